"""The resource server's side: verify an agent-auth access token offline (RFC 9068 §4).

Accepted only if everything holds: the header's `typ` is `at+jwt`; its `kid` names a published key and
its `alg` is the one that key is pinned to; the signature; `iss` is exactly the issuer; `aud` is this
API; `exp` (and `nbf`, `iat`) within a small skew; `sub` and `client_id` present; no duplicate JSON
member names; and, if asked, the required scopes and an introspection (RFC 7662) saying `active`.
After the first key fetch nothing here touches the network, unless a token names an unknown `kid`
(at most one refresh a minute) or introspection is asked for.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from agent_auth_sdk.discovery import discover, endpoint
from agent_auth_sdk.errors import AgentAuthError, InsufficientScope, InvalidToken
from agent_auth_sdk.keys import KeySet
from agent_auth_sdk.resource_metadata import protected_resource_metadata, resource_metadata_url
from agent_auth_sdk.transport import transport_for

if TYPE_CHECKING:
    from agent_auth_sdk.agent import AgentAuth

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
"""RFC 9068 §4: compared case-insensitively; an ID token or any other JWT we sign is never accepted."""
SKEW = 60
MAX_TOKEN_BYTES = 16384
R = TypeVar("R")


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token says. `user` is `sub`: the person for delegated tokens, otherwise the agent
    itself; `agent` is `client_id`; `actors` the `act` chain (RFC 8693 §4.1), the current actor first."""

    token: str
    claims: dict[str, Any]
    user: str
    agent: str
    scopes: frozenset[str]
    audience: str
    expires_at: int
    actors: tuple[str, ...]

    @property
    def act(self) -> dict[str, Any] | None:
        act = self.claims.get("act")
        return act if isinstance(act, dict) else None

    @property
    def delegated(self) -> bool:
        """The agent acts for someone else (a user, or another agent through exchange)."""
        return self.user != self.agent or bool(self.actors)

    def __repr__(self) -> str:
        return f"VerifiedToken(user={self.user!r}, agent={self.agent!r}, scopes={sorted(self.scopes)})"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidToken("The token is malformed")
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)
"""Built once: `json.loads(..., object_pairs_hook=...)` would build a decoder per call (half the cost)."""


def _segment(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("The token is malformed") from exc


def _json_segment(text: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(_segment(text).decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError too
        raise InvalidToken("The token is malformed") from exc
    if not isinstance(value, dict):
        raise InvalidToken("The token is malformed")
    return value


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e11


def actor_chain(claims: dict[str, Any], limit: int = 16) -> tuple[str, ...]:
    chain: list[str] = []
    act = claims.get("act")
    while act is not None:
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str) or len(chain) >= limit:
            raise InvalidToken("The token's act claim is malformed")
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


class Verifier:
    """One API (`audience`, its resource URI) trusting one issuer. Thread-safe; build one per process.

    `scopes`: required of every token (more per call). `introspection`: an `AgentAuth` for this API's
    own agent (listed in the audience's `resource_servers`), for `verify(..., introspect=True)`.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        scopes: Iterable[str] = (),
        jwks_uri: str | None = None,
        http: Any = None,
        introspection: AgentAuth | None = None,
        skew: int = SKEW,
        clock: Callable[[], float] = time.time,
        refresh_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.scopes = tuple(scopes)
        self._http = transport_for(http)
        self._jwks_uri = jwks_uri
        self._jwks_uri_lock = threading.Lock()
        self._introspection = introspection
        self._skew = skew
        self._clock = clock
        self.keys = KeySet(self._resolve_jwks_uri, self._http, refresh_clock)

    def _resolve_jwks_uri(self) -> str:
        with self._jwks_uri_lock:
            if self._jwks_uri is None:
                self._jwks_uri = endpoint(discover(self.issuer, self._http), "jwks_uri")
            return self._jwks_uri

    @property
    def ready(self) -> bool:
        return self.keys.ready

    def load(self) -> None:
        """Fetch the keys now (at start-up) rather than on the first request."""
        self.keys.load()

    def verify(self, token: str, scopes: Iterable[str] = (), *, introspect: bool = False) -> VerifiedToken:
        """The verified token, or `InvalidToken` / `InsufficientScope` (with an RFC 6750 challenge)."""
        claims = self._verified_claims(token)
        granted = claims.get("scope", "")
        if not isinstance(granted, str):
            raise InvalidToken("The token is malformed")
        scope_set = frozenset(granted.split())
        required = (*self.scopes, *scopes)
        if not scope_set.issuperset(required):
            raise InsufficientScope(tuple(required))
        if introspect:
            self._check_active(token)
        return VerifiedToken(
            token=token,
            claims=claims,
            user=claims["sub"],
            agent=claims["client_id"],
            scopes=scope_set,
            audience=self.audience,
            expires_at=int(claims["exp"]),
            actors=actor_chain(claims),
        )

    def verify_header(
        self, authorization: str | None, scopes: Iterable[str] = (), *, introspect: bool = False
    ) -> VerifiedToken:
        """From an `Authorization` header value: `Bearer <token>` (RFC 6750 §2.1)."""
        if not authorization:
            raise InvalidToken("A bearer token is required")
        kind, _, token = authorization.strip().partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise InvalidToken("A bearer token is required")
        return self.verify(token.strip(), scopes, introspect=introspect)

    def requires(
        self, *scopes: str, introspect: bool = False
    ) -> Callable[[Callable[..., R]], Callable[..., R]]:
        """A decorator for a plain function whose first argument is the `Authorization` header: the
        function gets the `VerifiedToken` in its place, or `TokenRejected` is raised before it runs."""

        def decorate(function: Callable[..., R]) -> Callable[..., R]:
            @functools.wraps(function)
            def wrapper(authorization: str | None, *args: Any, **kwargs: Any) -> R:
                verified = self.verify_header(authorization, scopes, introspect=introspect)
                return function(verified, *args, **kwargs)

            return wrapper

        return decorate

    def resource_metadata(self, **extra: Any) -> dict[str, Any]:
        """RFC 9728 §2 metadata for this API, naming this issuer as its authorization server."""
        return protected_resource_metadata(self.audience, self.issuer, **extra)

    @property
    def resource_metadata_url(self) -> str:
        return resource_metadata_url(self.audience)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            raise InvalidToken("The token is malformed")
        head, body, signature = token.split(".")
        header = _json_segment(head)
        typ, alg, kid = header.get("typ"), header.get("alg"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("The token is not an access token")
        if "crit" in header or not isinstance(alg, str) or not isinstance(kid, str):
            raise InvalidToken("The token's header is not acceptable")
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("The token is signed by an unknown key")
        if key.alg != alg:
            raise InvalidToken("The token's algorithm is not the key's")
        signing_input = f"{head}.{body}".encode("ascii", "replace")
        if not key.algorithm.verify(signing_input, key.key, _segment(signature)):
            raise InvalidToken("The token's signature is invalid")
        claims = _json_segment(body)
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("The token is from another issuer")
        aud = claims.get("aud")
        if aud != self.audience and not (isinstance(aud, list) and self.audience in aud):
            raise InvalidToken("The token is for another audience")
        now = self._clock()
        exp = claims.get("exp")
        if not _is_time(exp):
            raise InvalidToken("The token has no expiry")
        assert isinstance(exp, int | float)
        if exp <= now - self._skew:
            raise InvalidToken("The token has expired")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _is_time(value) or value > now + self._skew):
                raise InvalidToken("The token is not valid yet")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("client_id"), str):
            raise InvalidToken("The token names no subject or client")

    def _check_active(self, token: str) -> None:
        if self._introspection is None:
            raise AgentAuthError("introspect=True needs Verifier(..., introspection=AgentAuth(...))")
        if self._introspection.introspect(token).get("active") is not True:
            raise InvalidToken("The token is not active")
