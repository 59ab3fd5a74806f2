"""Pinned-algorithm JWS verification (RFC 7515, RFC 8725 §3.1-3.2) with a key source.

Used for our own access tokens (tokens/validator.py) and, later, trusted issuers' and the upstream
provider's ID tokens. Refused before any key is touched: oversized input, `alg: none` and HMAC,
key-carrying headers (`jku`, `x5u`, `jwk`, `x5c`), any `crit`, duplicate member names, a wrong `typ`.
The key is chosen by `kid` from an allow-list, and the algorithm is the one that key is pinned to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_auth.oauth import jose

ASYMMETRIC_ALGS = frozenset({"RS256", "PS256", "ES256", "ES384", "EdDSA"})
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class JwtRejected(Exception):
    """Why a JWT was refused, for the audit trail only (never sent to a client)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerificationKey:
    key: jose.PublicKey
    alg: str


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """kid -> key, for every usable public key that names its kid; keys without one are skipped."""
    parsed: dict[str, VerificationKey] = {}
    keys = jwks.get("keys")
    for jwk in keys if isinstance(keys, list) else []:
        if (
            not isinstance(jwk, dict)
            or jose.PRIVATE_MEMBERS & set(jwk)
            or not isinstance(jwk.get("kid"), str)
        ):
            continue
        try:
            parsed[jwk["kid"]] = VerificationKey(jose.load_public_jwk(jwk), jose.pinned_alg(jwk))
        except (ValueError, KeyError):
            continue
    return parsed


def unverified_parts(token: str, max_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, parsed strictly but NOT verified: only for choosing a key or a verifier."""
    if len(token) > max_size:
        raise JwtRejected("too_large")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtRejected("malformed")
    try:
        return jose.strict_json_object(jose.b64url_decode(parts[0])), jose.strict_json_object(
            jose.b64url_decode(parts[1])
        )
    except jose.MalformedJose as exc:
        raise JwtRejected("malformed") from exc


def verify_jws(
    token: str,
    keys: Mapping[str, VerificationKey],
    *,
    typ: frozenset[str] | None,
    max_size: int = 8192,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The verified header and claims. `typ`: the allowed values (lower-case), or None when a `typ`
    header is not required."""
    header, claims = unverified_parts(token, max_size)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGS:
        raise JwtRejected("alg_refused")
    if FORBIDDEN_HEADERS & set(header):
        raise JwtRejected("header_refused")
    if typ is not None:
        value = header.get("typ")
        if not isinstance(value, str) or value.lower() not in typ:
            raise JwtRejected("wrong_typ")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise JwtRejected("unknown_kid")
    if key.alg != alg:
        raise JwtRejected("alg_not_pinned")
    import jwt  # imported on first use: only the paths that verify tokens pay its import

    try:
        jwt.PyJWS().decode_complete(token, key=key.key, algorithms=[key.alg])
    except jwt.PyJWTError as exc:
        raise JwtRejected("bad_signature") from exc
    return header, claims
