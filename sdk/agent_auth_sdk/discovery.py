"""Authorization server metadata (RFC 8414), fetched once and checked against the issuer we trust."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from agent_auth_sdk.errors import AgentAuthError
from agent_auth_sdk.transport import Transport


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path."""
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise AgentAuthError("The issuer must be an http(s) URL without query or fragment")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"


def discover(issuer: str, http: Transport) -> dict[str, Any]:
    answer = http.get(metadata_url(issuer))
    if answer.status != 200:
        raise AgentAuthError(f"Discovery at {metadata_url(issuer)} answered {answer.status}")
    metadata = answer.json()
    # RFC 8414 §3.3: the issuer in the document must be identical to the one we asked about, or an
    # attacker's metadata could send our credentials elsewhere.
    if not isinstance(metadata, dict) or metadata.get("issuer") != issuer:
        raise AgentAuthError("The metadata's issuer is not the configured issuer")
    return metadata


def endpoint(metadata: dict[str, Any], name: str) -> str:
    value = metadata.get(name)
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise AgentAuthError(f"The server's metadata names no {name}")
    return value
