"""Performance target 1, as behaviour: what one fresh client-credentials token costs in AWS calls."""

from __future__ import annotations

from collections import Counter
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from botocore.session import Session

from agent_auth.handlers import token
from tests.conftest import ISSUER, Deployment
from tests.support import JWT_BEARER, form, post_event


def count_calls(event: dict[str, Any]) -> tuple[int, Counter[str], int]:
    original = BaseClient._make_api_call
    original_create = Session.create_client
    calls: Counter[str] = Counter()
    created = 0

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls[f"{self.meta.service_model.service_name}:{operation}"] += 1
        return original(self, operation, params)

    def creating(self: Session, *args: Any, **kwargs: Any) -> Any:
        nonlocal created
        created += 1
        return original_create(self, *args, **kwargs)

    with (
        mock.patch.object(BaseClient, "_make_api_call", counting),
        mock.patch.object(Session, "create_client", creating),
    ):
        status = token.lambda_handler(event, None)["statusCode"]
    return status, calls, created


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
