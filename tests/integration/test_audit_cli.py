"""`agent-auth audit --stack` against moto: the new fields, --user, --limit, and indexed reads only."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.audit import AuditRecord, unverified
from agent_auth.cli.main import main
from agent_auth.handlers import token
from tests.conftest import Deployment
from tests.integration.test_operator_targets import create_stack
from tests.support import basic, form, load_event, with_body

STACK = ["--stack", "agent-auth", "--region", "us-east-1"]
ALICE = "alice@example.com"


@pytest.fixture
def stack(aws: AwsClients, deployment: Deployment) -> Deployment:
    create_stack(aws, deployment)
    return deployment


@contextmanager
def dynamodb_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every DynamoDB operation the block makes, with its parameters."""
    from botocore.client import BaseClient

    calls: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append((operation, dict(params)))
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", recording):
        yield calls


def audit_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["audit", *STACK, "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def write(deployment: Deployment, minutes_ago: float, **fields: Any) -> AuditRecord:
    record = AuditRecord(
        action=fields.pop("action", "token.exchange"),
        decision=fields.pop("decision", "allow"),
        at=time.time() - 60 * minutes_ago,
        **fields,
    )
    deployment.target.audit.write(record)
    return record


def delegated(deployment: Deployment, minutes_ago: float, user: str = ALICE) -> AuditRecord:
    return write(
        deployment,
        minutes_ago,
        client_id="support-bot",
        user=user,
        actor_chain=("support-bot", "planner-bot"),
        token_family="fam-7f3a",
        policy_rule="agents.support-bot.jit[0]",
        scope_granted="crm.contacts.read",
    )


def test_the_user_actor_chain_family_and_rule_are_shown(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delegated decision
    record = delegated(stack, minutes_ago=1)

    # Then --json has every new field, as stored
    [shown] = [r for r in audit_json(capsys, "--since", "1h") if r["id"] == record.id]
    assert shown["user"] == ALICE and shown["actor_chain"] == ["support-bot", "planner-bot"]
    assert (shown["token_family"], shown["policy_rule"]) == ("fam-7f3a", "agents.support-bot.jit[0]")
    assert not {"pk", "sk", "hour", "user_key", "expires_at"} & set(shown)

    # And the table names them, under the same columns as before
    assert main(["audit", *STACK, "--since", "1h"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TIME", "ACTION", "DECISION", "WHO", "SCOPE", "REASON"]
    [row] = [line for line in lines if line.startswith(record.timestamp)]
    assert f"support-bot for {ALICE} via support-bot, planner-bot" in row
    assert "rule agents.support-bot.jit[0]; family fam-7f3a" in row


def test_user_lists_only_that_users_records_through_the_user_index(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given records for two users and for none
    alice = [delegated(stack, minutes_ago=m).id for m in (1, 5, 9)]
    delegated(stack, minutes_ago=2, user="bob@example.com")
    write(stack, minutes_ago=3, client_id="support-bot")

    # When Alice's records are listed (her address in another case)
    with dynamodb_calls() as calls:
        records = audit_json(capsys, "--user", "Alice@Example.COM", "--since", "1h")

    # Then exactly hers come, newest first, from one Query on the user index
    assert [r["id"] for r in records] == alice
    queries = [params for operation, params in calls if operation == "Query"]
    assert [q["IndexName"] for q in queries] == ["by-user"]
    assert not [operation for operation, _ in calls if operation == "Scan"]


def test_user_and_agent_together_narrow_to_both(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = delegated(stack, minutes_ago=1)
    write(stack, minutes_ago=2, client_id="billing-agent", user=ALICE)
    records = audit_json(capsys, "--user", ALICE, "--agent", "support-bot", "--since", "1h")
    assert [r["id"] for r in records] == [mine.id]


def test_limit_returns_the_newest_across_hours_without_a_scan(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given records spread over the last five hours
    written = [write(stack, minutes_ago=m, client_id="support-bot") for m in range(5, 300, 25)]

    # When the last day is listed, at most 6
    with dynamodb_calls() as calls:
        records = audit_json(capsys, "--since", "24h", "--limit", "6")

    # Then the 6 newest of the table come: the fixture's policy.apply and two secret.rotate, then
    # the records of 5, 30 and 55 minutes ago
    newest = [str(item["id"]) for item in stack.audit_records()[:6]]
    assert [r["id"] for r in records] == newest
    assert [r.id for r in written[:3]] == newest[3:]
    # And only Query calls on the by-hour index were made, none past the 4th record's hour
    operations = [operation for operation, _ in calls]
    assert set(operations) <= {"Query", "GetItem"} and "Scan" not in operations
    queries = [params for operation, params in calls if operation == "Query"]
    assert all(q["IndexName"] == "by-hour" and q["ScanIndexForward"] is False for q in queries)
    assert len(queries) <= 3  # 55 minutes span at most two hour buckets, plus the clock-skew bucket


def test_agent_is_a_query_on_the_agents_partition(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a token request of the support bot, through the token handler
    event = with_body(
        load_event("token_client_secret_basic.json"),
        form(grant_type="client_credentials"),
        Authorization=basic("support-bot", stack.secrets["support-bot"]),
    )
    assert token.lambda_handler(event, None)["statusCode"] == 200
    write(stack, minutes_ago=1, client_id="billing-agent")

    # When its records are listed
    with dynamodb_calls() as calls:
        records = audit_json(capsys, "--agent", "support-bot", "--since", "1h")

    # Then they are its own, from Query on the table's key (no index, no scan)
    assert records and {r["client_id"] for r in records} == {"support-bot"}
    assert records[0]["action"] == "token.issue" and records[0]["decision"] == "allow"
    queries = [params for operation, params in calls if operation == "Query"]
    assert len(queries) == 1 and "IndexName" not in queries[0]
    assert queries[0]["ExpressionAttributeValues"][":k"] == {"S": "agent#support-bot"}


def test_an_unverified_fingerprint_finds_its_refusals(
    stack: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given refusals of two unknown clients
    event = with_body(
        load_event("token_client_secret_post.json"),
        form(grant_type="client_credentials", client_id="ghost", client_secret="x" * 43),
    )
    assert token.lambda_handler(event, None)["statusCode"] == 401
    write(stack, minutes_ago=1, client_id=unverified("other"), decision="deny")

    # When the fingerprint the trail shows is looked up
    fingerprint = str(unverified("ghost"))
    records = audit_json(capsys, "--agent", fingerprint, "--since", "1h")

    # Then only that client's refusal comes
    assert [(r["client_id"], r["reason"]) for r in records] == [(fingerprint, "unknown_client")]


def test_the_default_limit_is_a_hundred(stack: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(110):
        write(stack, minutes_ago=i / 10, client_id="support-bot")
    assert len(audit_json(capsys, "--since", "1h")) == 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "not-an-email"], "--user takes an email address"),
        (["--agent", "Not A Name"], "--agent takes an agent's name"),
    ],
)
def test_a_filter_that_can_match_nothing_is_an_error(
    stack: Deployment, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["audit", *STACK, *args]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "-3", "ten"])
def test_limit_must_be_positive(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "--dev", "--limit", limit])
    assert exit_.value.code == 2 and "--limit" in capsys.readouterr().err
