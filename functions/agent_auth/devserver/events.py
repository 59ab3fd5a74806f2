"""API Gateway REST proxy events (payload format 1.0), as API Gateway would build them."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

from agent_auth.routes import path_pattern


def rest_proxy_event(
    *,
    method: str,
    path: str,
    resource: str | None = None,
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    source_ip: str = "127.0.0.1",
    stage: str = "dev",
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers or []:
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True) if query else None
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    resource = resource or path
    match = path_pattern(resource).match(path) if "{" in resource else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {k: unquote(v) for k, v in match.groupdict().items()} if match else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "domainName": host,
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": dict(headers or []).get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }
