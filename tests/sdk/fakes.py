"""An authorization server on an httpx2 `MockTransport`, and access tokens signed as agent-auth signs them,
for the SDK's unit tests."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt

from tests.support import ClientKey, rsa_key

ISSUER = "https://auth.example.com"
API = "https://crm.example.com"

Handler = Callable[[httpx2.Request], httpx2.Response]


def form_of(request: httpx2.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}


def oauth_error(error: str, description: str = "", status: int = 400) -> httpx2.Response:
    body = {"error": error, **({"error_description": description} if description else {})}
    return httpx2.Response(status, json=body)


def token_response(token: str = "token-1", expires_in: int = 300, scope: str = "") -> httpx2.Response:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": scope}
    return httpx2.Response(200, json=body, headers={"Cache-Control": "no-store"})


@dataclass
class FakeServer:
    """Metadata and JWKS answer by themselves; each other endpoint answers with `routes[path]`."""

    key: ClientKey = field(default_factory=lambda: rsa_key("as-1"))
    routes: dict[str, Handler] = field(default_factory=dict)
    sent: list[httpx2.Request] = field(default_factory=list)
    jwks_keys: list[dict[str, Any]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def counts(self) -> Counter[str]:
        return Counter(f"{r.method} {r.url.path}" for r in self.sent)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "token_endpoint": f"{ISSUER}/token",
            "access_request_endpoint": f"{ISSUER}/access-requests",
            "introspection_endpoint": f"{ISSUER}/introspect",
            "revocation_endpoint": f"{ISSUER}/revoke",
            "jwks_uri": f"{ISSUER}/jwks.json",
        }

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        with self.lock:
            self.sent.append(request)
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx2.Response(200, json=self.metadata())
        if path == "/jwks.json":
            return httpx2.Response(200, json={"keys": self.jwks_keys or [self.key.jwk]})
        return self.routes[path](request)

    def client(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))

    def access_token(self, *, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        return sign_access_token(self.key, headers=headers, **overrides)


def sign_access_token(
    key: ClientKey, *, headers: dict[str, Any] | None = None, alg: str | None = None, **overrides: Any
) -> str:
    """An RFC 9068 token as agent-auth issues it; an override of None removes the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "support-bot",
        "aud": API,
        "exp": now + 300,
        "iat": now,
        "jti": "jti-1",
        "client_id": "support-bot",
        "scope": "crm.contacts.read",
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    header = {"typ": "at+jwt", "kid": key.jwk["kid"], **(headers or {})}
    return jwt.encode(claims, key.private, algorithm=alg or key.alg, headers=header)


def raw_token(header: dict[str, Any], claims_json: str, key: ClientKey) -> str:
    """A token whose claims segment is exactly `claims_json` (e.g. with a duplicate member)."""
    from agent_auth.oauth.jose import b64url_encode

    signing_input = (
        f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(claims_json.encode())}".encode()
    )
    algorithm = jwt.get_algorithm_by_name(key.alg)
    signature = algorithm.sign(signing_input, key.private)
    return f"{signing_input.decode()}.{b64url_encode(signature)}"
