"""How an agent proves who it is at the token, access-request and introspection endpoints: a client
secret (RFC 6749 §2.3.1, Basic or in the body) or a signed JWT assertion (private_key_jwt, RFC 7523 §2.2)."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60
"""Short: the server remembers each assertion's `jti` until its `exp`, and refuses it a second time."""

SecretMethod = Literal["client_secret_basic", "client_secret_post"]


def _form_encoded(value: str) -> str:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded."""
    return quote(value, safe="").replace("%20", "+")


class SecretAuth:
    def __init__(self, client_id: str, secret: str, method: SecretMethod = "client_secret_basic") -> None:
        self.client_id, self._secret, self._method = client_id, secret, method

    def apply(self, form: dict[str, str], audience: str) -> dict[str, str]:
        """The headers to send; the body gains the credentials for client_secret_post."""
        if self._method == "client_secret_post":
            form.update(client_id=self.client_id, client_secret=self._secret)
            return {}
        pair = f"{_form_encoded(self.client_id)}:{_form_encoded(self._secret)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _alg_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError("private_key must be RSA, EC P-256 or Ed25519")


def load_private_key(private_key: Any) -> Any:
    """A `cryptography` key, PEM text or bytes, or a private JWK (dict), parsed once."""
    if isinstance(private_key, dict):
        return jwt.PyJWK(private_key).key
    if isinstance(private_key, str):
        private_key = private_key.encode()
    if isinstance(private_key, bytes):
        return serialization.load_pem_private_key(private_key, password=None)
    return private_key


class AssertionAuth:
    """private_key_jwt: a fresh assertion per request, `aud` = the issuer (RFC 7523bis: one audience)."""

    def __init__(
        self, client_id: str, private_key: Any, kid: str | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.client_id = client_id
        if isinstance(private_key, dict) and kid is None:
            kid = private_key.get("kid")
        self._key = load_private_key(private_key)
        self._alg = _alg_for(self._key)
        self._kid = kid
        self._clock = clock

    def assertion(self, audience: str) -> str:
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(18),
        }
        headers = {"kid": self._kid} if self._kid else None
        return jwt.encode(claims, self._key, algorithm=self._alg, headers=headers)

    def apply(self, form: dict[str, str], audience: str) -> dict[str, str]:
        form.update(client_assertion_type=JWT_BEARER, client_assertion=self.assertion(audience))
        return {}


ClientAuth = SecretAuth | AssertionAuth
