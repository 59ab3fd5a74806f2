"""How an audit record is keyed: never on what an unauthenticated client sent (adapters/audit_table.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_auth import schema
from agent_auth.adapters.audit_table import (
    UNATTRIBUTED,
    audit_item,
    partition_key,
    record_from_item,
)
from agent_auth.adapters.dynamodb import to_item
from agent_auth.audit import AuditRecord, unverified

AT = datetime(2026, 12, 1, 22, 15, 3, 123000, tzinfo=UTC).timestamp()
RETENTION = timedelta(days=30)
SECRET = "Zq3v_secret-value-of-forty-three-characters"


def record(**fields: Any) -> AuditRecord:
    return AuditRecord(action="token.issue", decision="deny", at=AT, id="0123456789abcdef", **fields)


@pytest.mark.parametrize(
    "client_id",
    [
        unverified(SECRET),  # what the client endpoint records for an unknown client_id
        SECRET,  # a secret in the client_id field, had anything recorded it as sent
        "support-bot\n",  # a name with a trailing newline is not a name
        "Support-Bot",
        "a" * 65,
        "",
    ],
    ids=["fingerprint", "secret", "newline", "upper case", "too long", "empty"],
)
def test_a_client_id_that_is_not_an_agent_name_is_keyed_on_the_fixed_partition(client_id: str) -> None:
    # Given a record whose client_id is not an agent name
    item = audit_item(record(client_id=client_id), RETENTION)

    # Then no key is built from it
    assert partition_key(record(client_id=client_id)) == UNATTRIBUTED
    keys = [str(item[name]) for name in schema.AUDIT.key_attributes() if name in item]
    assert item["pk"] == UNATTRIBUTED
    if client_id:
        assert all(client_id not in key for key in keys)


def test_no_client_and_no_operator_is_the_fixed_partition() -> None:
    assert partition_key(record()) == UNATTRIBUTED


def test_an_agent_name_keys_its_own_partition() -> None:
    assert partition_key(record(client_id="support-bot")) == "agent#support-bot"


def test_an_operator_change_without_an_agent_keys_the_operators_partition() -> None:
    operator = "arn:aws:sts::123456789012:assumed-role/ops/alice"
    assert partition_key(record(operator=operator)) == f"operator#{operator}"
    # An agent named by the record wins over the operator who acted on it
    assert partition_key(record(operator=operator, client_id="support-bot")) == "agent#support-bot"


def test_the_item_carries_the_time_keys_and_the_new_fields() -> None:
    # Given a record acting for a user through a chain of agents, decided by a rule, in a token family
    item = audit_item(
        record(
            client_id="support-bot",
            user="Alice@Example.com",
            actor_chain=("support-bot", "planner"),
            token_family="fam-1",
            policy_rule="agents.support-bot.jit[0]",
        ),
        RETENTION,
    )

    # Then it is keyed by time (sort key and hour bucket) and by user (lower case), and keeps every field
    assert item["sk"] == "2026-12-01T22:15:03.123Z#0123456789abcdef"
    assert item["hour"] == "2026-12-01T22"
    assert item["user_key"] == "user#alice@example.com"
    assert item["expires_at"] == int(AT + RETENTION.total_seconds())
    assert item["user"] == "Alice@Example.com" and item["actor_chain"] == ["support-bot", "planner"]
    assert (item["token_family"], item["policy_rule"]) == ("fam-1", "agents.support-bot.jit[0]")


@pytest.mark.parametrize("user", [None, "", "x" * 310 + "@example.com"], ids=["none", "empty", "too long"])
def test_a_record_without_a_usable_user_is_not_in_the_user_index(user: str | None) -> None:
    assert "user_key" not in audit_item(record(client_id="support-bot", user=user), RETENTION)


def test_a_read_record_has_no_keys_and_no_retention() -> None:
    # Given the stored item of a record
    stored = to_item(audit_item(record(client_id="support-bot", user="a@example.com"), RETENTION))

    # Then reading it back gives the record's own fields only
    read = record_from_item(stored)
    assert not {"pk", "sk", "hour", "user_key", "expires_at", "day"} & set(read)
    assert read["client_id"] == "support-bot" and read["time"] == "2026-12-01T22:15:03.123Z"
