"""Performance target 1, as behaviour: what one fresh client-credentials token costs in AWS calls."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from agent_auth.handlers import token
from tests.conftest import ISSUER, Deployment
from tests.support import JWT_BEARER, form, post_event, recording_aws_calls


def count_calls(event: dict[str, Any]) -> tuple[int, Counter[str], int]:
    with recording_aws_calls() as log:
        status = token.lambda_handler(event, None)["statusCode"]
    return status, log.calls, log.clients_created


@pytest.fixture
def warm(deployment: Deployment) -> Deployment:
    """One request first, so the execution environment has built its clients."""
    token.lambda_handler(post_event(form(grant_type="client_credentials")), None)
    return deployment


def test_client_secret_token_costs_one_sign_two_reads_one_audit_write(warm: Deployment) -> None:
    # Given an agent with just-in-time rules: its grants are read too (the second read)
    event = post_event(
        form(
            grant_type="client_credentials",
            client_id="billing-agent",
            client_secret=warm.secrets["billing-agent"],
            scope="billing.invoices.read",
        )
    )
    status, calls, created = count_calls(event)
    assert status == 200
    assert calls == Counter(
        {"kms:Sign": 1, "dynamodb:GetItem": 1, "dynamodb:Query": 1, "dynamodb:PutItem": 1}
    )
    assert created == 0, "no client is created per request"


def test_private_key_jwt_token_adds_one_conditional_write(warm: Deployment) -> None:
    assertion = warm.keys["rsa"].assertion("signing-agent", f"{ISSUER}/token")
    event = post_event(
        form(
            grant_type="client_credentials",
            client_assertion_type=JWT_BEARER,
            client_assertion=assertion,
            scope="crm.contacts.read",
        )
    )
    status, calls, created = count_calls(event)
    assert status == 200
    assert calls == Counter({"kms:Sign": 1, "dynamodb:GetItem": 1, "dynamodb:PutItem": 2})
    assert created == 0
