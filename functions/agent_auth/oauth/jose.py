"""Small JOSE pieces we need without a library: base64url, strict JSON, JWK parsing and kids.

Verification of client assertions goes through PyJWT (client_assertion.py); issuing is plain JWS
compact serialization over a Signer, so the private key never leaves KMS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key


class MalformedJose(ValueError):
    pass


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise MalformedJose("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedJose("not base64url") from exc


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJose("duplicate member name")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise MalformedJose(f"{name} is not JSON")  # NaN and Infinity are Python's extension, not RFC 8259


def strict_json_object(data: bytes) -> dict[str, Any]:
    """RFC 7515 §5.2 / RFC 7519 §4: refuse duplicate member names rather than pick one; and only
    RFC 8259 JSON (no NaN or Infinity, no lone surrogates), so every value is usable as it is."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # fails on a lone surrogate (\ud800)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise MalformedJose("not a JSON object") from exc
    if not isinstance(value, dict):
        raise MalformedJose("not a JSON object")
    return value


def compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


# Public JWK members per key type; anything else in a registered client key is refused by the policy.
PUBLIC_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
DEFAULT_ALG = {"RSA": "RS256", "EC:P-256": "ES256", "OKP:Ed25519": "EdDSA"}
ALLOWED_ALGS = {"RSA": ("RS256", "PS256"), "EC:P-256": ("ES256",), "OKP:Ed25519": ("EdDSA",)}


def key_type(jwk: dict[str, Any]) -> str:
    kty = jwk.get("kty")
    return f"{kty}:{jwk.get('crv')}" if kty in ("EC", "OKP") else str(kty)


def kid_for_key(key_arn: str) -> str:
    """The `kid` of a KMS signing key, derived from its ARN.

    Deriving it from the ARN rather than the public key means the token function never calls
    GetPublicKey (performance target 1): it knows its kid from configuration alone, and a new key
    gets a new kid, so published keys can overlap during rotation.
    """
    return b64url_encode(hashlib.sha256(key_arn.encode("utf-8")).digest()[:16])


def public_jwk_from_der(der: bytes, alg: str, kid: str) -> dict[str, Any]:
    """The JWK of a KMS public key (SubjectPublicKeyInfo DER)."""
    key = load_der_public_key(der)
    jwk: dict[str, Any]
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        jwk = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        numbers_ec = key.public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _uint(numbers_ec.x, 32), "y": _uint(numbers_ec.y, 32)}
    elif isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    else:
        raise MalformedJose("unsupported public key type")
    return {**jwk, "alg": alg, "use": "sig", "kid": kid}


def _uint(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
MIN_RSA_BITS = 2048


def load_public_jwk(jwk: dict[str, Any]) -> PublicKey:
    """A registered client key as a cryptography key object; raises ValueError when it is unusable."""
    kind = key_type(jwk)
    try:
        if kind == "RSA":
            n = int.from_bytes(b64url_decode(str(jwk["n"])), "big")
            e = int.from_bytes(b64url_decode(str(jwk["e"])), "big")
            if n.bit_length() < MIN_RSA_BITS:
                raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if kind == "EC:P-256":
            x = int.from_bytes(b64url_decode(str(jwk["x"])), "big")
            y = int.from_bytes(b64url_decode(str(jwk["y"])), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if kind == "OKP:Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))
    except KeyError as exc:
        raise ValueError(f"missing member {exc.args[0]!r}") from exc
    except MalformedJose as exc:
        raise ValueError("a member is not base64url") from exc
    raise ValueError(f"unsupported key type {kind!r}")


def pinned_alg(jwk: dict[str, Any]) -> str:
    """The one algorithm a registered key may be used with: its `alg`, or the default for its type."""
    return str(jwk.get("alg") or DEFAULT_ALG[key_type(jwk)])
