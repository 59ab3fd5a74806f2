"""Brute force and enumeration through lambda_handler against moto: failures counted per agent and per
source address, 429 with Retry-After past the limit, the lock surviving `apply`, and an unknown client
making the same AWS calls as a known one (oauth/throttle.py, performance target 8)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any
from unittest import mock

import pytest

from agent_auth import schema
from agent_auth.adapters.dynamodb import AgentTable
from agent_auth.clock import OffsetClock
from agent_auth.handlers import access_requests, token
from agent_auth.operations import apply_policy, rotate_secret
from agent_auth.policy.compiler import load_policy
from tests.conftest import Deployment
from tests.support import basic, form, load_event, post_event, recording_aws_calls, with_body

pytestmark = pytest.mark.usefixtures("clock")


def attempt(
    client_id: str, secret: str, source: str = "203.0.113.7", **headers: str
) -> tuple[int, dict[str, str], dict[str, Any]]:
    event = post_event(
        form(
            grant_type="client_credentials",
            client_id=client_id,
            client_secret=secret,
            scope="billing.invoices.read",
        ),
        **headers,
    )
    event["requestContext"]["identity"]["sourceIp"] = source
    result = token.lambda_handler(event, None)
    return result["statusCode"], result["headers"], json.loads(result["body"])


def test_300_wrong_secrets_end_in_429_and_the_right_one_works_after_the_window(
    deployment: Deployment, clock: OffsetClock
) -> None:
    # Given the start of a counting window (so a slow machine does not cross into the next one)
    window = deployment.settings.auth_failure_window
    clock.offset += window - (time.time() + clock.offset) % window + 1
    # And 300 wrong secrets in a row for one agent
    before = len(deployment.audit_records())
    results = [attempt("billing-agent", f"guess-{i}") for i in range(300)]

    # Then the first ten are plain 401s and every later one is 429 temporarily_unavailable with Retry-After
    statuses = [status for status, _, _ in results]
    assert statuses == [401] * 10 + [429] * 290
    status, headers, body = results[-1]
    assert body == {
        "error": "temporarily_unavailable",
        "error_description": "Too many failed client authentications; retry later",
    }
    assert headers["Cache-Control"] == "no-store" and "WWW-Authenticate" not in headers
    retry_after = int(headers["Retry-After"])
    assert 0 < retry_after <= deployment.settings.auth_failure_window
    # And each one is audited once, naming the agent and the counter that refused it
    records = deployment.audit_records()
    assert len(records) == before + 300
    assert records[0]["client_id"] == "billing-agent" and records[0]["reason"] == "too_many_failures:agent"
    assert records[0]["details"] == {"error": "temporarily_unavailable", "status": 429}

    # When the right secret comes while the agent is locked / Then it is refused too
    secret = deployment.secrets["billing-agent"]
    assert attempt("billing-agent", secret, source="192.0.2.10")[0] == 429

    # When the window has passed / Then the right secret gets a token again
    clock.offset += retry_after + 1
    status, _, body = attempt("billing-agent", secret, source="192.0.2.10")
    assert status == 200, body


def test_unknown_client_makes_the_same_calls_and_keys_no_item(deployment: Deployment) -> None:
    attempt("nobody-at-all", "x", source="192.0.2.1")  # the first unknown client ever shapes the decoy

    # When a known agent gets a wrong secret and an unknown client tries, each from its own address
    with recording_aws_calls() as known:
        assert attempt("billing-agent", "wrong", source="192.0.2.2")[0] == 401
    with recording_aws_calls() as unknown:
        assert attempt("nobody-here", "wrong", source="192.0.2.3")[0] == 401

    # Then both cost one read, two counter writes and the audit record
    assert (
        known.calls
        == unknown.calls
        == Counter({"dynamodb:GetItem": 1, "dynamodb:UpdateItem": 2, "dynamodb:PutItem": 1})
    )
    # And no item anywhere is keyed on the unknown names, nor holds them
    env = deployment.settings.to_env()
    for spec in schema.ALL_TABLES:
        assert "nobody" not in json.dumps(deployment.scan(env[spec.env_var])), spec.logical_name


def test_unknown_client_moves_as_much_item_data_as_a_known_one(deployment: Deployment) -> None:
    # Given the bytes of items each AWS response brings back (an agent's read, the decoy's update)
    from botocore.client import BaseClient

    moved: list[int] = []
    original = BaseClient._make_api_call

    def measuring(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        response = original(self, operation, params)
        moved.append(len(json.dumps(response.get("Item") or response.get("Attributes") or {})))
        return response

    attempt("nobody-at-all", "x", source="192.0.2.1")  # the first unknown client ever shapes the decoy
    with mock.patch.object(BaseClient, "_make_api_call", measuring):
        attempt("support-bot", "wrong", source="192.0.2.2")
        known = sum(moved)
        moved.clear()
        attempt("nobody-here", "wrong", source="192.0.2.3")
        unknown = sum(moved)
    # Then a refused unknown client decodes about as much as a refused known one (the example's agents)
    assert 0.8 < unknown / known < 1.25, (unknown, known)


def test_source_address_is_the_one_api_gateway_saw(deployment: Deployment) -> None:
    # Given guesses over made-up names from one address, each claiming another X-Forwarded-For
    statuses = [
        attempt(f"guess-{i}", "x", source="198.51.100.9", X_Forwarded_For=f"10.0.0.{i}")[0] for i in range(11)
    ]
    # Then the header changes nothing: the eleventh failure from that address is a 429
    assert statuses == [401] * 10 + [429]
    assert deployment.audit_records()[0]["reason"] == "too_many_failures:source"
    # And another address still gets a plain 401
    assert attempt("guess-x", "x", source="198.51.100.10")[0] == 401


def test_apply_keeps_the_lock_and_rotating_the_secret_ends_it(deployment: Deployment) -> None:
    # Given the billing agent locked by failures from many addresses
    for i in range(10):
        attempt("billing-agent", "wrong", source=f"192.0.2.{i}")
    assert attempt("billing-agent", deployment.secrets["billing-agent"], source="192.0.2.50")[0] == 429

    # When the operator applies the policy again / Then the agent stays locked
    apply_policy(deployment.target, load_policy(str(deployment.policy_file)))
    assert attempt("billing-agent", deployment.secrets["billing-agent"], source="192.0.2.51")[0] == 429

    # When the operator rotates its secret / Then the new secret works at once
    secret = rotate_secret(deployment.target, "billing-agent")["client_secret"]
    status, _, body = attempt("billing-agent", secret, source="192.0.2.52")
    assert status == 200, body


def test_a_lock_never_brings_back_a_removed_agent(deployment: Deployment) -> None:
    # Given the agents table, When an agent that does not exist is locked
    agents = AgentTable(deployment.clients.dynamodb, deployment.settings.agents_table)
    agents.lock("removed-agent", 2_000_000_000)
    # Then no item appears for it
    assert agents.get_client("removed-agent") is None


def test_counters_expire_with_their_window(deployment: Deployment) -> None:
    # Given one failure / Then its counters carry the window's end as their TTL attribute, and are keyed by it
    attempt("billing-agent", "wrong", source="192.0.2.77")
    items = [i for i in deployment.scan(deployment.settings.throttle_table) if "expires_at" in i]
    assert {i["pk"]["S"].rsplit("#", 1)[0] for i in items} == {"agent#billing-agent", "source#192.0.2.77"}
    for item in items:
        assert item["pk"]["S"].endswith("#" + item["expires_at"]["N"])
        assert int(item["expires_at"]["N"]) % deployment.settings.auth_failure_window == 0


def test_access_requests_are_throttled_by_the_same_counters(deployment: Deployment) -> None:
    # Given ten wrong secrets at the token endpoint
    for i in range(10):
        attempt("support-bot", "wrong", source=f"192.0.2.{100 + i}")
    # When the agent asks for elevated access with its right secret
    event = with_body(
        load_event("access_request.json"),
        form(scope="crm.contacts.write", reason="Merge duplicate contacts"),
        Authorization=basic("support-bot", deployment.secrets["support-bot"]),
    )
    result = access_requests.lambda_handler(event, None)
    # Then it is refused the same way: the lock is the agent's, not the endpoint's
    assert result["statusCode"] == 429 and "Retry-After" in result["headers"]
