"""Inputs that once reached a 500 (found in review): each now gets a 4xx and exactly one audit record."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from agent_auth.handlers import token
from tests.conftest import ISSUER, Deployment
from tests.integration.jit_support import ask, decide, deliver, link_of, open_link
from tests.support import JWT_BEARER, form, post_event

pytestmark = pytest.mark.usefixtures("clock")


def _b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


def _signed(d: Deployment, header: dict[str, Any], payload: str) -> str:
    """A genuinely signed assertion whose payload is raw JSON text (so it can hold NaN or \\ud800)."""
    signing_input = f"{_b64(json.dumps(header))}.{_b64(payload)}"
    signature = d.keys["rsa"].private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _token(body: str, **headers: str) -> Callable[[Deployment], int]:
    return lambda d: int(token.lambda_handler(post_event(body, **headers), None)["statusCode"])


def _assertion_case(header: dict[str, Any], payload: str) -> Callable[[Deployment], int]:
    def run(d: Deployment) -> int:
        text = payload.replace("AUD", f"{ISSUER}/token").replace("EXP", str(int(time.time()) + 60))
        assertion = _signed(d, header, text)
        body = form(
            grant_type="client_credentials", client_assertion_type=JWT_BEARER, client_assertion=assertion
        )
        return int(token.lambda_handler(post_event(body), None)["statusCode"])

    return run


CLAIMS = '{"iss":"signing-agent","sub":"signing-agent","aud":"AUD","exp":EXP,"jti":"JTI"'
CASES: dict[str, tuple[Callable[[Deployment], int], int]] = {
    "non-ASCII Basic credentials": (
        _token(form(grant_type="client_credentials"), Authorization="Basic ééé"),
        401,
    ),
    "alg as a list": (
        _assertion_case({"alg": ["RS256"], "kid": "rsa-1"}, CLAIMS.replace("JTI", "a") + "}"),
        401,
    ),
    "exp NaN": (
        _assertion_case(
            {"alg": "RS256", "kid": "rsa-1"}, CLAIMS.replace("EXP", "NaN").replace("JTI", "b") + "}"
        ),
        401,
    ),
    "jti lone surrogate": (
        _assertion_case({"alg": "RS256", "kid": "rsa-1"}, CLAIMS.replace("JTI", "\\ud800") + "}"),
        401,
    ),
    "400-digit iat": (
        _assertion_case(
            {"alg": "RS256", "kid": "rsa-1"}, CLAIMS.replace("JTI", "c") + ',"iat":' + "9" * 400 + "}"
        ),
        401,
    ),
    "resource with a broken IPv6 literal": (lambda d: ask(d, resource="http://[x")[0], 400),
    "duration in superscript digits": (lambda d: ask(d, duration="²")[0], 400),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_input_is_a_4xx_with_one_audit_record(deployment: Deployment, case: str) -> None:
    run, expected = CASES[case]
    before = len(deployment.audit_records())
    assert run(deployment) == expected
    records = deployment.audit_records()
    assert len(records) == before + 1 and records[0]["decision"] == "deny"


@pytest.mark.parametrize(("field", "value"), [("expires", "²"), ("csrf", "é")])
def test_hostile_approval_fields(deployment: Deployment, field: str, value: str) -> None:
    ask(deployment)
    link = link_of(next(m for m in deliver(deployment) if m["to"] == "lead@example.com"))
    csrf = open_link(link).csrf
    before = len(deployment.audit_records())
    if field == "csrf":
        page = decide(link, "approve", value, cookie=csrf)
    else:
        page = decide(link, "approve", csrf, expires=value)
    assert page.status == 403
    assert len(deployment.audit_records()) == before + 1
