"""Anything at any endpoint finds only 4xx (security.md): seeded random methods, headers and bodies."""

from __future__ import annotations

import random

from agent_auth.devserver.events import rest_proxy_event
from agent_auth.handlers import access_requests, approvals, token, wellknown
from tests.conftest import Deployment

PATHS = [
    "/token",
    "/access-requests",
    "/approvals/req_abc",
    "/approvals/%2F..%2F",
    "/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/token/",
    "/",
    "/%00",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW"]
PIECES = [
    b"grant_type=",
    b"client_credentials",
    b"client_id=",
    b"billing-agent",
    b"client_secret=",
    b"&",
    b"=",
    b"%",
    b"%zz",
    b"%ff",
    b"+",
    b"scope=",
    b"resource=",
    b"client_assertion=",
    b"a.b.c",
    b"eyJhbGciOiJub25lIn0",
    b"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
    b"\x00",
    b"\xff",
    "é".encode(),
    b"grant_type=password",
    b"reason=",
    b"%3Cscript%3E",
    b"duration=99999999999",
    b"request_id=req_x",
    b"decision=approve",
    b"csrf=x",
    b"grant_type=urn%3Aagent-auth%3Agrant-type%3Aaccess-request",
    b"resource=https%3A%2F%2Fcrm.example.com",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "text/plain",
    "",
    "multipart/form-data",
    "application/x-www-form-urlencoded; charset=latin-1",
]
AUTH = [
    "",
    "Basic",
    "Basic !!",
    "Basic YTpi",
    "Bearer x",
    "Basic " + "A" * 5000,
    "basic YmlsbGluZy1hZ2VudDp4",
]


def test_random_requests_never_get_a_5xx(deployment: Deployment) -> None:
    rng = random.Random(20261129)
    handlers = {"/token": token.lambda_handler, "/access-requests": access_requests.lambda_handler}
    for case in range(400):
        path = rng.choice(PATHS)
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        headers = [("Content-Type", rng.choice(CONTENT_TYPES))]
        if rng.random() < 0.5:
            headers.append(("Authorization", rng.choice(AUTH)))
        query = rng.choice(
            ["", "approver=a%40b.c&expires=1&sig=AA", "sig=%ff&sig=x", "approver=&expires=99999999999999"]
        )
        resource = "/approvals/{request_id}" if path.startswith("/approvals/") else path
        event = rest_proxy_event(
            method=rng.choice(METHODS), path=path, resource=resource, query=query, headers=headers, body=body
        )
        if rng.random() < 0.1:
            event["body"], event["isBase64Encoded"] = "%%%not-base64", True
        default = approvals.lambda_handler if path.startswith("/approvals/") else wellknown.lambda_handler
        handler = handlers.get(path, default)
        status = handler(event, None)["statusCode"]
        assert status < 500, f"case {case}: {event['httpMethod']} {path} {body!r} -> {status}"
