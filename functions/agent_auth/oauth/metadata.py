"""Authorization server metadata (RFC 8414 §2) and OpenID Connect Discovery (§3), listing only what this
server actually supports."""

from __future__ import annotations

from agent_auth.oauth.client_assertion import ASYMMETRIC_ALGS

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
"""`none`: public agents (auth: none), which may only use grant types that prove them by PKCE."""
AUTHENTICATED_METHODS = tuple(m for m in AUTH_METHODS if m != "none")
"""Introspection and revocation need an authenticated agent (product.md, "Token lifecycle")."""


def server_metadata(issuer: str, grant_types: tuple[str, ...]) -> dict[str, object]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        # Just-in-time elevation (product.md flow 2); polled with the access-request grant type.
        "access_request_endpoint": f"{issuer}/access-requests",
        "jwks_uri": f"{issuer}/jwks.json",
        "grant_types_supported": list(grant_types),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        # RFC 9207: every authorization response carries iss.
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": ["openid", "offline_access"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
        # RFC 8414 §2 (RFC 7662, RFC 7009): after issue, for authenticated agents only.
        "introspection_endpoint": f"{issuer}/introspect",
        "introspection_endpoint_auth_methods_supported": list(AUTHENTICATED_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": list(AUTHENTICATED_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": sorted(ASYMMETRIC_ALGS),
    }


def openid_configuration(issuer: str, grant_types: tuple[str, ...], signing_alg: str) -> dict[str, object]:
    """OpenID Connect Discovery 1.0 §3 adds what an OpenID provider must state; ID tokens are signed with
    the same KMS key as access tokens (and are told apart by `typ`)."""
    return {
        **server_metadata(issuer, grant_types),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email"],
    }
