"""Authorization server metadata (RFC 8414 §2), listing only what this server actually supports."""

from __future__ import annotations

from agent_auth.oauth.client_assertion import ASYMMETRIC_ALGS

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post")


def server_metadata(issuer: str, grant_types: tuple[str, ...]) -> dict[str, object]:
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        # Just-in-time elevation (product.md flow 2); polled with the access-request grant type.
        "access_request_endpoint": f"{issuer}/access-requests",
        "jwks_uri": f"{issuer}/jwks.json",
        "grant_types_supported": list(grant_types),
        # No authorization endpoint yet, so no response types (RFC 8414 §2 asks for the list).
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
    }
