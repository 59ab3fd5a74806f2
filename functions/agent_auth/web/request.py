"""The HTTP request and response as the handlers see them, built from API Gateway REST proxy events.

This is the only code that reads event dictionaries; everything below it sees these two types.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 16 * 1024


class MalformedEvent(Exception):
    pass


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names. A header sent twice keeps its first value; `repeated_headers` names it."""
    body: bytes
    source_ip: str
    http_request_id: str
    """API Gateway's requestContext.requestId."""
    query: dict[str, list[str]] = field(default_factory=dict)
    repeated_headers: frozenset[str] = frozenset()
    path_params: dict[str, str] = field(default_factory=dict)

    def cookie(self, name: str) -> str | None:
        for part in (self.header("cookie") or "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value
        return None

    def query_param(self, name: str) -> str | None:
        """One value; a repeated query parameter counts as absent (never guess which one was meant)."""
        values = self.query.get(name) or []
        return values[0] if len(values) == 1 and values[0] else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        multi = event.get("multiValueHeaders") or {}
        headers: dict[str, str] = {}
        repeated: set[str] = set()
        for name, values in multi.items():
            if values:
                headers[name.lower()] = values[0]
                if len(values) > 1:
                    repeated.add(name.lower())
        for name, value in (event.get("headers") or {}).items():
            headers.setdefault(name.lower(), value)
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedEvent("body is not base64") from exc
        else:
            body = raw.encode("utf-8", "surrogatepass")
        identity = context.get("identity") or {}
        return cls(
            method=(event.get("httpMethod") or "GET").upper(),
            path=event.get("path") or "/",
            headers=headers,
            body=body,
            source_ip=identity.get("sourceIp") or "",
            http_request_id=context.get("requestId") or "",
            query={k: list(v) for k, v in (event.get("multiValueQueryStringParameters") or {}).items()},
            repeated_headers=frozenset(repeated),
        )


@dataclass
class Response:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: tuple[str, ...] = ()
    """Every Set-Cookie value, when a response sets more than one (a header map holds one): sent as
    API Gateway's multiValueHeaders, which it merges with `headers` (there the first one stays)."""

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status=status,
            body=json.dumps(payload, separators=(",", ":")),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def to_proxy_result(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": self.headers,
            **({"multiValueHeaders": {"Set-Cookie": list(self.cookies)}} if self.cookies else {}),
            "body": self.body,
            "isBase64Encoded": False,
        }
