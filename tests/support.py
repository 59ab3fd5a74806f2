"""Test helpers shared by the unit, integration and end-to-end suites."""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from agent_auth.oauth.jose import b64url_encode

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def with_body(event: dict[str, Any], body: str | bytes, **headers: str) -> dict[str, Any]:
    """A copy of `event` with another body and extra or replaced headers (None removes one)."""
    event = copy.deepcopy(event)
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body, False
    for name, value in headers.items():
        header = name.replace("_", "-")
        for key in [k for k in event["headers"] if k.lower() == header.lower()]:
            del event["headers"][key]
            del event["multiValueHeaders"][key]
        if value is not None:
            event["headers"][header] = value
            event["multiValueHeaders"][header] = [value]
    return event


def post_event(body: str | bytes, **headers: str) -> dict[str, Any]:
    """POST /token with a form body, from the recorded client_secret_post event."""
    return with_body(load_event("token_client_secret_post.json"), body, **headers)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def form(**fields: str) -> str:
    return urlencode(fields)


@dataclass
class ClientKey:
    private: Any
    jwk: dict[str, Any]
    alg: str

    def assertion(self, client_id: str, audience: str, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "exp": now + 60,
            "iat": now,
            "jti": secrets.token_urlsafe(12),
        }
        headers = overrides.pop("headers", {})
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.jwk["kid"], **headers}
        )


def _uint(value: int, size: int | None = None) -> str:
    return b64url_encode(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def rsa_key(kid: str = "rsa-1", alg: str = "RS256") -> ClientKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    return ClientKey(
        private, {"kty": "RSA", "kid": kid, "n": _uint(numbers.n), "e": _uint(numbers.e), "alg": alg}, alg
    )


def ec_key(kid: str = "ec-1") -> ClientKey:
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "kid": kid, "x": _uint(numbers.x, 32), "y": _uint(numbers.y, 32)}
    return ClientKey(private, jwk, "ES256")


def ed25519_key(kid: str = "ed-1") -> ClientKey:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return ClientKey(private, {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64url_encode(raw)}, "EdDSA")


def policy_document(keys: dict[str, ClientKey]) -> dict[str, Any]:
    """The policy most tests run against: one agent per authentication method, two audiences."""
    return {
        "version": 1,
        "audiences": {
            "crm": {
                "uri": "https://crm.example.com",
                "scopes": {"crm.contacts.read": "Read contacts", "crm.contacts.write": "Change contacts"},
            },
            "billing": {
                "uri": "https://billing.example.com",
                "scopes": {"billing.invoices.read": "Read invoices"},
            },
        },
        "roles": {
            "crm-reader": ["crm.contacts.read"],
            "crm-editor": ["crm.contacts.read", "crm.contacts.write"],
            "billing-reader": ["billing.invoices.read"],
        },
        "approvers": {"support-leads": ["lead@example.com", "oncall@example.com", "owner@example.com"]},
        "users": {"alice@example.com": ["crm-editor"], "group:support": ["crm-reader"]},
        "agents": {
            "support-bot": {
                "owner": "owner@example.com",
                "auth": "client_secret_basic",
                "roles": ["crm-reader"],
                "jit": [{"role": "crm-editor", "approvers": "support-leads", "max_duration": "1h"}],
                "never": ["billing.invoices.read"],
            },
            "billing-agent": {
                "owner": "finance@example.com",
                "auth": "client_secret_post",
                "roles": ["billing-reader", "crm-reader"],
                "jit": [
                    {
                        "scopes": ["crm.contacts.write"],
                        "auto": True,
                        "max_duration": "30m",
                        "single_use": True,
                    }
                ],
            },
            "signing-agent": {
                "owner": "owner@example.com",
                "auth": "private_key_jwt",
                "jwks": {"keys": [dict(k.jwk) for k in keys.values()]},
                "roles": ["crm-editor"],
            },
            "public-app": {
                "owner": "owner@example.com",
                "auth": "none",
                "delegation": {
                    "redirect_uris": ["http://127.0.0.1:8765/callback"],
                    "scopes": ["crm.contacts.read", "crm.contacts.write"],
                },
            },
        },
    }


def write_policy(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass
class AwsCallLog:
    calls: Counter[str]
    """"service:Operation" -> how many times it was called."""
    clients_created: int = 0


@contextmanager
def recording_aws_calls() -> Iterator[AwsCallLog]:
    """Every botocore API call and client creation made inside the block, whichever session made it."""
    from botocore.client import BaseClient
    from botocore.session import Session

    log = AwsCallLog(Counter())
    original_call, original_create = BaseClient._make_api_call, Session.create_client

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        log.calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original_call(self, operation, params)

    def creating(self: Session, *args: Any, **kwargs: Any) -> Any:
        log.clients_created += 1
        return original_create(self, *args, **kwargs)

    with (
        mock.patch.object(BaseClient, "_make_api_call", counting),
        mock.patch.object(Session, "create_client", creating),
    ):
        yield log


def serialize_aws_calls(monkeypatch: Any) -> None:
    """moto's in-process backend is not thread-safe: make AWS calls one at a time, as DynamoDB
    serializes writes to one item. Requests still interleave everywhere else."""
    import threading

    from botocore.client import BaseClient

    lock, original = threading.Lock(), BaseClient._make_api_call

    def serialized(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        with lock:
            return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", serialized)
