"""private_key_jwt: JWT client assertions (RFC 7523 §3, RFC 7521 §4.2).

Refused before any key is touched: `alg: none` and HMAC, key-carrying headers (`jku`, `x5u`, `jwk`,
`x5c`), any `crit` (we understand no extensions), duplicate member names. Then the signature, with the
one algorithm the registered key is pinned to; then the claims; and only then the `jti` is recorded,
so a forged assertion cannot burn a legitimate client's jti. The record is a conditional write, so two
concurrent uses of one assertion get exactly one token.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from agent_auth.clock import Clock
from agent_auth.errors import InvalidClient
from agent_auth.oauth import jose
from agent_auth.oauth.jwt_verifier import JwtRejected, unverified_parts
from agent_auth.ports import KeyFetcher, ReplayGuard
from agent_auth.records import Agent

ASYMMETRIC_ALGS = frozenset({"RS256", "PS256", "ES256", "EdDSA"})
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
ASSERTION_TYPES = frozenset(
    {"jwt", "client-authentication+jwt", "application/jwt", "application/client-authentication+jwt"}
)
"""`typ` values a client assertion may carry (RFC 7519 §5.1, RFC 7523bis); compared case-insensitively."""
MAX_LIFETIME = 3600
"""An assertion may be valid for at most an hour; its jti is remembered that long."""
SKEW = 60
MAX_JTI = 256
MAX_ASSERTION_BYTES = 8192
AUTH_FAILED = "Client authentication failed"


def _fail(reason: str) -> InvalidClient:
    return InvalidClient(AUTH_FAILED, reason=reason)


def _split(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return unverified_parts(assertion, MAX_ASSERTION_BYTES)
    except JwtRejected as exc:
        raise _fail("assertion_malformed") from exc


def claimed_client(assertion: str) -> str:
    """The client an assertion claims to come from (`iss`, which must equal `sub`); not yet proven."""
    _, claims = _split(assertion)
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or iss != sub:
        raise _fail("assertion_iss_sub")
    return iss


@dataclass(frozen=True)
class _Key:
    key: jose.PublicKey
    alg: str


class AssertionVerifier:
    def __init__(
        self, *, audiences: tuple[str, ...], replay: ReplayGuard, keys: KeyFetcher, clock: Clock
    ) -> None:
        self._audiences = frozenset(audiences)
        self._replay = replay
        self._keys = keys
        self._clock = clock
        self._parsed: OrderedDict[str, dict[str, _Key]] = OrderedDict()

    def verify(self, assertion: str, client: Agent) -> None:
        header, claims = _split(assertion)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGS:
            raise _fail("assertion_alg_refused")
        if FORBIDDEN_HEADERS & set(header):
            raise _fail("assertion_header_refused")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ASSERTION_TYPES):
            raise _fail("assertion_typ")  # e.g. at+jwt: one of our access tokens is never an assertion
        key = self._select_key(client, header)
        if key.alg != alg:
            raise _fail("assertion_alg_not_pinned")
        self._check_signature(assertion, key)
        expires_at = self._check_claims(claims, client.client_id)
        marker = f"jti#{client.client_id}#{hashlib.sha256(claims['jti'].encode()).hexdigest()}"
        if not self._replay.remember_once(marker, expires_at + SKEW, int(self._clock.now())):
            raise _fail("assertion_replayed")

    def _check_claims(self, claims: dict[str, Any], client_id: str) -> int:
        now = self._clock.now()
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _fail("assertion_iss_sub")
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        # RFC 7523bis: exactly one audience. An array naming us and someone else is how the 2025
        # audience-injection attacks replayed an assertion meant for another server at this one.
        if not isinstance(aud, str) or aud not in self._audiences:
            raise _fail("assertion_audience")
        exp = claims.get("exp")
        if not _is_number(exp):
            raise _fail("assertion_exp_missing")
        assert isinstance(exp, int | float)
        if exp <= now - SKEW:
            raise _fail("assertion_expired")
        if exp > now + MAX_LIFETIME + SKEW:
            raise _fail("assertion_exp_too_far")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is not None and (not _is_number(value) or float(value) > now + SKEW):
                raise _fail(f"assertion_{name}_in_future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
            raise _fail("assertion_jti")
        return int(exp)

    def _select_key(self, client: Agent, header: dict[str, Any]) -> _Key:
        keys = self._client_keys(client)
        kid = header.get("kid")
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        if isinstance(kid, str) and kid in keys:
            return keys[kid]
        if len(keys) == 1 and next(iter(keys)).startswith("#"):
            return next(iter(keys.values()))  # one registered key without a kid: the kid is only a hint
        if client.jwks_uri and isinstance(kid, str):
            keys = self._client_keys(client, refresh=True)  # the client may have rotated its keys
            if kid in keys:
                return keys[kid]
        raise _fail("assertion_unknown_kid")

    def _client_keys(self, client: Agent, refresh: bool = False) -> dict[str, _Key]:
        if client.jwks_uri:
            jwks = self._keys.fetch_jwks(client.jwks_uri, refresh=refresh)
            source = jose.compact_json(jwks).decode()
        else:
            source = client.jwks or '{"keys":[]}'
        cached = self._parsed.get(source)
        if cached is None:
            cached = _parse_keys(source)
            self._parsed[source] = cached
            if len(self._parsed) > 512:
                self._parsed.popitem(last=False)
        return cached

    @staticmethod
    def _check_signature(assertion: str, key: _Key) -> None:
        import jwt  # imported on first use: only private_key_jwt clients pay its ~30 ms import

        try:
            jwt.PyJWS().decode_complete(assertion, key=key.key, algorithms=[key.alg])
        except jwt.PyJWTError as exc:
            raise _fail("assertion_bad_signature") from exc


def _parse_keys(source: str) -> dict[str, _Key]:
    """Parsed once per key set (no key parsing per request); unusable keys are skipped."""
    try:
        keys = jose.strict_json_object(source.encode()).get("keys")
    except jose.MalformedJose:
        return {}
    parsed: dict[str, _Key] = {}
    for i, jwk in enumerate(keys if isinstance(keys, list) else []):
        if not isinstance(jwk, dict) or jose.PRIVATE_MEMBERS & set(jwk):
            continue
        kind = jose.key_type(jwk)
        if kind not in jose.ALLOWED_ALGS or jose.pinned_alg(jwk) not in jose.ALLOWED_ALGS[kind]:
            continue
        try:
            parsed[str(jwk.get("kid", f"#{i}"))] = _Key(jose.load_public_jwk(jwk), jose.pinned_alg(jwk))
        except ValueError:
            continue
    return parsed


def _is_number(value: object) -> bool:
    """A JSON number a time can be: finite and within a sane range (a 400-digit iat is not a time)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and -1e12 < value < 1e12
