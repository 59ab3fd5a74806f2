"""OAuth 2.0 Protected Resource Metadata (RFC 9728): how an MCP client finds who issues tokens for an
API. `authorization_servers` holds exactly our issuer, so a client checks the AS metadata against it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def resource_metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{parts.path.rstrip('/')}"


def resource_metadata_path(resource: str) -> str:
    return WELL_KNOWN + urlsplit(resource).path.rstrip("/")


def protected_resource_metadata(
    resource: str,
    issuer: str,
    *,
    scopes_supported: list[str] | None = None,
    resource_name: str | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [issuer],
        "bearer_methods_supported": ["header"],  # RFC 6750 §2.1 only: never a query parameter
    }
    if scopes_supported:
        document["scopes_supported"] = scopes_supported
    if resource_name:
        document["resource_name"] = resource_name
    return document
