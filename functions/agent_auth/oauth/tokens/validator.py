"""A check of our own access tokens (RFC 9068 §4), for token exchange and introspection.

Only tokens we can prove: signature by a key we publish (allow-listed by `kid`, algorithm pinned),
`typ: at+jwt` (an ID token, refresh token or link token is never an access token), the exact issuer,
the required claims, `exp` in the future within a small skew, and then a revocation hook, so a revoked
token, or one of a disabled agent, is refused like an expired one.

Our signing keys rotate while functions run (docs/key-rotation.md): a key is published before it signs,
and unpublished once its last token expired. So the parsed keys are kept for KEYS_CACHE_SECONDS at most
(a key no longer published stops verifying), and an unknown `kid` reads them again, at most once every
MIN_REFRESH_SECONDS (a flood of made-up kids costs one read a minute), both by the injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent_auth.clock import Clock
from agent_auth.oauth.jwt_verifier import JwtRejected, VerificationKey, keys_from_jwks, verify_jws
from agent_auth.oauth.tokens.access_token import (
    ACCESS_REQUEST_CLAIM,
    ACCESS_REQUESTS_CLAIM,
    ACCESS_TOKEN_TYP,
    ANCESTORS_CLAIM,
    MAX_ANCESTORS,
    ORIGIN_CLAIM,
    TOKEN_FAMILY_CLAIM,
)
from agent_auth.records import JitGrant

SKEW = 60
MAX_TOKEN_BYTES = 8192
"""A subject token larger than this is refused outright (RFC 8693 exchanges; Keycloak CVE-2026-9704)."""
MAX_ACTORS = 8
"""An `act` chain deeper than any policy allows (max_chain is at most 5) is not followed further."""
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
KEYS_CACHE_SECONDS = 300
"""How long parsed keys are kept: /jwks.json's `max-age`, so we follow our own publication as fast as any
resource server does."""
MIN_REFRESH_SECONDS = 60
"""The least time between two reads of the keys forced by an unknown `kid` (the key set's own cache)."""


class PublishedKeys(Protocol):
    def jwks(self) -> dict[str, Any]:
        """The JWKS we publish at /jwks.json (cached by the adapter)."""
        ...


class RevocationCheck(Protocol):
    def is_revoked(self, claims: Mapping[str, Any], now: int) -> bool:
        """True for a revoked token, one of a revoked family, or one of a disabled agent."""
        ...


@dataclass(frozen=True)
class TokenStatus:
    """What the stores say about a token whose signature and expiry are already checked."""

    revoked: str | None
    """Why it is no longer active (for the audit trail), or None."""
    jit_grants: tuple[JitGrant, ...] = ()
    """The JIT grants the token draws on, as stored now (introspection shows them)."""


class TokenStatusReader(RevocationCheck, Protocol):
    def status(self, claims: Mapping[str, Any], now: int) -> TokenStatus:
        """Every revocation that could reach the token (its jti, its refresh family, its JIT grants, its
        agent and the agents of its `act` chain disabled), read at once."""
        ...


@dataclass(frozen=True)
class AccessTokenClaims:
    claims: Mapping[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def audience(self) -> str:
        return str(self.claims["aud"])

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(str(self.claims.get("scope") or "").split())

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    @property
    def token_id(self) -> str:
        return str(self.claims["jti"])

    @property
    def issued_at(self) -> int:
        return int(self.claims["iat"])

    @property
    def token_family(self) -> str | None:
        family = self.claims.get(TOKEN_FAMILY_CLAIM)
        return family if isinstance(family, str) else None

    @property
    def origin_client(self) -> str | None:
        """The agent whose token began an exchanged token's chain."""
        origin = self.claims.get(ORIGIN_CLAIM)
        client = origin.get("client_id") if isinstance(origin, dict) else None
        return client if isinstance(client, str) else None

    @property
    def ancestors(self) -> tuple[str, ...]:
        """The ids of our tokens an exchanged token came from, oldest first (at most MAX_ANCESTORS)."""
        ancestors = self.claims.get(ANCESTORS_CLAIM)
        ids = ancestors if isinstance(ancestors, list) else []
        return tuple(i for i in ids if isinstance(i, str))[:MAX_ANCESTORS]

    @property
    def grant_ids(self) -> tuple[str, ...]:
        """The JIT grants the token draws on (their ids are the access requests')."""
        one, several = self.claims.get(ACCESS_REQUEST_CLAIM), self.claims.get(ACCESS_REQUESTS_CLAIM)
        ids = [one] if isinstance(one, str) else several if isinstance(several, list) else []
        return tuple(i for i in ids if isinstance(i, str))

    @property
    def actors(self) -> tuple[str, ...]:
        """The agents of the `act` chain, outermost first (RFC 8693 §4.1), at most MAX_ACTORS."""
        chain: list[str] = []
        act = self.act
        while act is not None and isinstance(act.get("sub"), str) and len(chain) < MAX_ACTORS:
            chain.append(act["sub"])
            nested = act.get("act")
            act = nested if isinstance(nested, dict) else None
        return tuple(chain)

    @property
    def act(self) -> Mapping[str, Any] | None:
        act = self.claims.get("act")
        return act if isinstance(act, dict) else None


class AccessTokenValidator:
    def __init__(
        self,
        *,
        issuer: str,
        keys: PublishedKeys,
        clock: Clock,
        revocations: RevocationCheck | None = None,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._clock = clock
        self._revocations = revocations
        self._parsed: dict[str, VerificationKey] | None = None
        self._read_at = 0.0

    def validate(self, token: str) -> AccessTokenClaims:
        """The token's claims; JwtRejected (with the reason for the audit trail) otherwise."""
        now = int(self._clock.now())
        try:
            _, claims = verify_jws(token, self._verification_keys(now), typ=_TYP, max_size=MAX_TOKEN_BYTES)
        except JwtRejected as rejected:
            # A key published since we read ours (a rotation has begun): read them again, once a minute.
            if rejected.reason != "unknown_kid" or 0 <= now - self._read_at < MIN_REFRESH_SECONDS:
                raise
            self._parsed = None
            keys = self._verification_keys(now)
            _, claims = verify_jws(token, keys, typ=_TYP, max_size=MAX_TOKEN_BYTES)
        if claims.get("iss") != self._issuer:
            raise JwtRejected("wrong_issuer")
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:
            raise JwtRejected("missing_claims")
        exp, iat = claims["exp"], claims["iat"]
        if not _is_time(exp) or not _is_time(iat) or not isinstance(claims["aud"], str):
            raise JwtRejected("malformed_claims")
        if exp <= now - SKEW:
            raise JwtRejected("expired")
        if iat > now + SKEW:
            raise JwtRejected("issued_in_future")
        if self._revocations is not None and self._revocations.is_revoked(claims, now):
            raise JwtRejected("revoked")
        return AccessTokenClaims(claims)

    def _verification_keys(self, now: float) -> dict[str, VerificationKey]:
        if self._parsed is None or not 0 <= now - self._read_at < KEYS_CACHE_SECONDS:
            self._parsed = None  # a failed read leaves nothing cached: the next request reads again
            self._parsed, self._read_at = keys_from_jwks(self._keys.jwks()), now
        return self._parsed


_TYP = frozenset({ACCESS_TOKEN_TYP, f"application/{ACCESS_TOKEN_TYP}"})


def _is_time(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**11
