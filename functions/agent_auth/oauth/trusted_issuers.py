"""Verifying a trusted issuer's JWT before it is exchanged (RFC 8693 §2.1 `subject_token`, RFC 7519 §7.2,
RFC 8725).

Only tokens we can prove, as for our own: the exact `iss` of a configured issuer, a key of its published
JWKS chosen by `kid`, the algorithm that key is pinned to and only if the issuer's allow-list names it
(ES384 included: AWS STS web identity tokens use it), the required `aud` (a single value), `exp` in the
future, `nbf`/`iat` not in the future, the claim that names the user, and a `jti` (recorded by the grant
once the exchange is decided, so a token is exchanged at most once).

Keys are cached per issuer for five minutes; a `kid` we do not know triggers a refetch, at most once a
minute per issuer, so a stream of made-up kids cannot turn us into a load generator against the issuer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from agent_auth.clock import Clock
from agent_auth.oauth import jose
from agent_auth.oauth.jwt_verifier import JwtRejected, VerificationKey, unverified_parts, verify_jws
from agent_auth.ports import KeyFetcher
from agent_auth.records import TrustedIssuer

KEYS_CACHE_SECONDS = 300
MIN_REFRESH_SECONDS = 60
"""An unknown kid refetches an issuer's keys at most once a minute."""
SKEW = 60
MAX_JTI = 256
_USER = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_DEFAULT_ALG = {"RSA": "RS256", "EC:P-256": "ES256", "EC:P-384": "ES384", "OKP:Ed25519": "EdDSA"}
_KEY_ALGS = {
    "RSA": ("RS256", "PS256"),
    "EC:P-256": ("ES256",),
    "EC:P-384": ("ES384",),
    "OKP:Ed25519": ("EdDSA",),
}


@dataclass(frozen=True)
class ExternalSubject:
    """A verified token of a trusted issuer: who it names, until when, and its replay marker."""

    issuer: str
    user: str
    expires_at: int
    jti: str
    claims: Mapping[str, Any]


class TrustedIssuerVerifier:
    def __init__(self, *, keys: KeyFetcher, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, VerificationKey]]] = {}

    def verify(self, token: str, trusted: TrustedIssuer, *, max_size: int) -> ExternalSubject:
        """The verified subject; JwtRejected with the reason (for the audit trail) otherwise."""
        header, _ = unverified_parts(token, max_size)
        _, claims = verify_jws(token, self._keys_for(trusted, header.get("kid")), typ=None, max_size=max_size)
        now = int(self._clock.now())
        if claims.get("iss") != trusted.issuer:
            raise JwtRejected("wrong_issuer")
        aud = claims.get("aud")
        if aud not in (trusted.audience, [trusted.audience]):
            raise JwtRejected("wrong_audience")
        exp = claims.get("exp")
        if not isinstance(exp, int) or not _is_time(exp):
            raise JwtRejected("missing_claims")
        if exp <= now:
            raise JwtRejected("expired")
        for claim in ("nbf", "iat"):
            if claim in claims and (not _is_time(claims[claim]) or claims[claim] > now + SKEW):
                raise JwtRejected("issued_in_future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
            raise JwtRejected("missing_jti")
        user = claims.get(trusted.user_claim)
        if not isinstance(user, str) or not _USER.match(user):
            raise JwtRejected("missing_user_claim")
        if trusted.user_claim == "email" and claims.get("email_verified") not in (True, "true"):
            # The address names the user only if the issuer vouches for it (OIDC Core §5.1); a missing
            # claim is refused too, or anyone who may set their own address there becomes that user.
            raise JwtRejected("email_not_verified")
        return ExternalSubject(trusted.issuer, user.lower(), exp, jti, claims)

    def _keys_for(self, trusted: TrustedIssuer, kid: object) -> dict[str, VerificationKey]:
        now = self._clock.now()
        cached = self._cache.get(trusted.issuer)
        if cached is None or now - cached[0] >= KEYS_CACHE_SECONDS:
            cached = self._fetch(trusted, now, refresh=cached is not None)
        elif isinstance(kid, str) and kid not in cached[1] and now - cached[0] >= MIN_REFRESH_SECONDS:
            cached = self._fetch(trusted, now, refresh=True)
        return cached[1]

    def _fetch(
        self, trusted: TrustedIssuer, now: float, *, refresh: bool
    ) -> tuple[float, dict[str, VerificationKey]]:
        entry = (now, keys_from_trusted_jwks(self._keys.fetch_jwks(trusted.jwks_uri, refresh), trusted))
        self._cache[trusted.issuer] = entry
        return entry


def keys_from_trusted_jwks(jwks: Mapping[str, Any], trusted: TrustedIssuer) -> dict[str, VerificationKey]:
    """kid -> key for every public signing key whose pinned algorithm the issuer's allow-list names.

    Not the registered-client loader (jwt_verifier.keys_from_jwks): issuers also sign with P-384."""
    parsed: dict[str, VerificationKey] = {}
    keys = jwks.get("keys")
    for jwk in keys if isinstance(keys, list) else []:
        if (
            not isinstance(jwk, dict)
            or jose.PRIVATE_MEMBERS & set(jwk)
            or not isinstance(jwk.get("kid"), str)
        ):
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        kind = jose.key_type(jwk)
        alg = jwk.get("alg") or _DEFAULT_ALG.get(kind)
        if alg not in trusted.algorithms or alg not in _KEY_ALGS.get(kind, ()):
            continue  # pinned: an RSA key to RS256 or PS256, an EC or OKP key to its curve's algorithm
        try:
            key = _load_p384(jwk) if kind == "EC:P-384" else jose.load_public_jwk(jwk)
        except (ValueError, KeyError):
            continue
        parsed[jwk["kid"]] = VerificationKey(key, str(alg))
    return parsed


def _load_p384(jwk: Mapping[str, Any]) -> jose.PublicKey:
    try:
        x = int.from_bytes(jose.b64url_decode(str(jwk["x"])), "big")
        y = int.from_bytes(jose.b64url_decode(str(jwk["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()
    except jose.MalformedJose as exc:
        raise ValueError("not base64url") from exc


def _is_time(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**11
