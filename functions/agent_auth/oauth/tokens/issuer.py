"""One token issuer for every grant type (fosite's token strategy): claims, KMS signing, the result.

A grant type decides *what* to issue (an `Issuance`: who, for whom, which audience and scopes, the
latest end it may have, any `act` chain); the issuer alone builds the RFC 9068 claims, signs them and
reports the `IssuedToken` the response and the audit record are made from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_auth.oauth.tokens.access_token import (
    TOKEN_FAMILY_CLAIM,
    access_token_claims,
    new_token_id,
    sign_jwt,
)
from agent_auth.ports import Signer
from agent_auth.records import JitGrant

ID_TOKEN_LIFETIME = 300


@dataclass(frozen=True)
class IdTokenRequest:
    """`openid` was granted: an ID token goes with the access token (OpenID Connect Core §3.1.3.3)."""

    nonce: str | None = None


@dataclass(frozen=True)
class Issuance:
    """What a validated grant entitles the client to."""

    subject: str
    """`sub`: the agent itself (client credentials, RFC 9068 §2.2) or the user it acts for."""
    client_id: str
    audience: str
    scopes: tuple[str, ...]
    not_after: int | None = None
    """The token may not outlive this (a JIT grant's end, a subject token's exp)."""
    act: Mapping[str, Any] | None = None
    """RFC 8693 §4.1: the chain of agents acting for the subject, newest outermost."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Further claims (e.g. `access_request`, `approved_by`)."""
    user: str | None = None
    """For the audit record: the user the token acts for, when there is one."""
    details: Mapping[str, object] = field(default_factory=dict)
    """For the audit record only."""
    jit_grants: tuple[JitGrant, ...] = ()
    """The JIT grants the token draws on (a single-use one is consumed once the token is signed)."""
    token_family: str | None = None
    """The refresh family the token belongs to (delegated access), for the audit trail."""
    id_token: IdTokenRequest | None = None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    expires_in: int
    issuance: Issuance
    extra_response: Mapping[str, str] = field(default_factory=dict)
    """Beside the access token: `refresh_token`, `id_token`."""

    def response(self) -> dict[str, object]:
        """RFC 6749 §5.1."""
        return {
            "access_token": self.token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.issuance.scope,
            **self.extra_response,
        }


class TokenIssuer:
    def __init__(self, *, issuer: str, signer: Signer, lifetime: int) -> None:
        self._issuer = issuer
        self._signer = signer
        self._lifetime = lifetime

    def issue(self, issuance: Issuance, now: int) -> IssuedToken:
        lifetime = self._lifetime
        if issuance.not_after is not None:
            lifetime = min(lifetime, issuance.not_after - now)
        token_id = new_token_id()
        extra: dict[str, Any] = dict(issuance.extra)
        if issuance.act is not None:
            extra["act"] = dict(issuance.act)
        if issuance.token_family is not None:
            extra[TOKEN_FAMILY_CLAIM] = issuance.token_family  # so revoking the family reaches the token
        claims = access_token_claims(
            issuer=self._issuer,
            subject=issuance.subject,
            client_id=issuance.client_id,
            audience=issuance.audience,
            scope=issuance.scope,
            issued_at=now,
            lifetime=lifetime,
            token_id=token_id,
            extra=extra,
        )
        return IssuedToken(sign_jwt(self._signer, claims), token_id, lifetime, issuance)

    def id_token(self, *, user: str, client_id: str, nonce: str | None, now: int) -> str:
        """OpenID Connect Core §2: `aud` is the agent, `nonce` echoed; typ JWT, so our access-token
        validator never takes it for an access token (RFC 9068 §4)."""
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": user,
            "aud": client_id,
            "exp": now + min(self._lifetime, ID_TOKEN_LIFETIME),
            "iat": now,
            "email": user,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        return sign_jwt(self._signer, claims, typ="JWT")
