"""RFC 9068 JWT access tokens, signed by a Signer (KMS on AWS) as JWS compact serialization."""

from __future__ import annotations

import json
import secrets
from typing import Any

from agent_auth.oauth.jose import b64url_encode
from agent_auth.ports import Signer

ACCESS_TOKEN_TYP = "at+jwt"
"""RFC 9068 §2.1: distinguishes access tokens from ID tokens and every other JWT we sign."""
TOKEN_FAMILY_CLAIM = "token_family"
"""The refresh family a delegated token came from: revoking the refresh token revokes it (RFC 7009 §2.1).
Only an id: the refresh token's secret part never leaves the token response."""
ORIGIN_CLAIM = "origin"
"""On exchanged tokens: {iss, client_id} of the token that began the chain, whose agent's consent bounds
it and whose disabling revokes it (RFC 8693's `act` does not name that agent)."""
ANCESTORS_CLAIM = "ancestors"
"""On exchanged tokens: the ids (jti) of our tokens the chain was exchanged from, oldest first, so revoking
any of them revokes this one too (security.md: no token outlives the subject token it came from)."""
MAX_ANCESTORS = 8
ACCESS_REQUEST_CLAIM = "access_request"
"""The access request (= JIT grant id) a token draws on: revoking the grant makes the token inactive."""
ACCESS_REQUESTS_CLAIM = "access_requests"
"""The same for a token drawing on several JIT grants at once (one list)."""


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    audience: str,
    scope: str,
    issued_at: int,
    lifetime: int,
    token_id: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti, and scope."""
    return {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "jti": token_id,
        "client_id": client_id,
        "scope": scope,
        **(extra or {}),
    }


def sign_jwt(signer: Signer, claims: dict[str, Any], typ: str = ACCESS_TOKEN_TYP) -> str:
    header = {"alg": signer.alg, "typ": typ, "kid": signer.kid}
    signing_input = (
        f"{b64url_encode(json.dumps(header, separators=(',', ':')).encode())}."
        f"{b64url_encode(json.dumps(claims, separators=(',', ':')).encode())}"
    )
    signature = signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"
