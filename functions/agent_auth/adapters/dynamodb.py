"""The DynamoDB tables behind the ports: the only code that knows item layouts and DynamoDB calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from agent_auth.adapters.records_codec import agent_from_item, users_from_item, users_to_data
from agent_auth.errors import DependencyFailure
from agent_auth.ports import Write
from agent_auth.records import Agent, ApproverGroup, PreviousSecret, UserDirectory

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

AGENT_PREFIX = "agent#"
APPROVERS_PREFIX = "approvers#"
"""Approver groups; not "group#", which would read like the policy's `group:` users."""
POLICY_KEY = "policy#current"
USERS_KEY = "users#current"
"""The policy's `users`, compiled: one item, read whole when a user signs in for an agent."""
LOCK_ATTRIBUTE = "auth_locked_until"
"""Runtime state on an agent item (oauth/throttle.py): `apply` never writes it, `secret rotate` clears it."""


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_floats_to_decimal(v)) for k, v in data.items() if v is not None}


def _floats_to_decimal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _floats_to_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_to_decimal(v) for v in value]
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def is_conditional_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


@contextmanager
def aws_call() -> Iterator[None]:
    """Any AWS failure becomes DependencyFailure: the caller answers 503 instead of guessing."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailure(type(exc).__name__) from exc


def cancelled_by_condition(error: ClientError) -> bool:
    """A transaction cancelled because a condition failed, or because another transaction was writing
    the same item at that moment (TransactionConflict): either way, this one did not happen."""
    reasons = error.response.get("CancellationReasons") or []
    return any(r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons)


def conditional_write(call: Callable[[], object]) -> bool:
    """Run a conditional write or transaction: False when its condition failed (someone else got there
    first, or the item expired), True when it was written. Any other AWS failure is DependencyFailure."""
    try:
        with aws_call():
            call()
    except DependencyFailure as failure:
        cause = failure.__cause__
        if isinstance(cause, ClientError) and (
            is_conditional_failure(cause) or cancelled_by_condition(cause)
        ):
            return False
        raise
    return True


def numbers_to_int(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: numbers_to_int(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [numbers_to_int(v) for v in value]
    return value


class DynamoTransaction:
    """The Transaction port: TransactWriteItems over writes built by the table adapters."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def commit(self, writes: Sequence[Write]) -> bool:
        items = [w.operation for w in writes]
        return conditional_write(lambda: self._client.transact_write_items(TransactItems=items))


class AgentTable:
    """Compiled agents (one item each) and the applied policy document."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get_client(self, client_id: str) -> Agent | None:
        with aws_call():
            # Consistent: a removed agent or a rotated secret takes effect on the very next request.
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": AGENT_PREFIX + client_id}}, ConsistentRead=True
            )
        item = result.get("Item")
        return agent_from_item(numbers_to_int(from_item(item))) if item else None

    def group_members(self, group: str) -> list[str]:
        """The approver group as applied now (not as it was when an email was sent)."""
        found = self.approver_group(group)
        return list(found.members) if found else []

    def approver_group(self, group: str) -> ApproverGroup | None:
        """The group's item as applied now: its members, and whether they must sign in to decide (an
        item written before `sign_in` existed reads as false)."""
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": APPROVERS_PREFIX + group}}, ConsistentRead=True
            )
        item = result.get("Item")
        if not item:
            return None
        data = from_item(item)
        return ApproverGroup(group, tuple(data.get("members", [])), data.get("sign_in") is True)

    def get_users(self) -> UserDirectory:
        """The users directory as applied now; empty when no policy with `users` was applied."""
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": USERS_KEY}}, ConsistentRead=True
            )
        item = result.get("Item")
        return users_from_item(numbers_to_int(from_item(item)) if item else None)

    def get_policy(self) -> dict[str, Any] | None:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": POLICY_KEY}}, ConsistentRead=True
            )
        item = result.get("Item")
        return numbers_to_int(from_item(item)) if item else None

    def list_client_ids(self) -> list[str]:
        ids: list[str] = []
        with aws_call():
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._table, ProjectionExpression="pk", ConsistentRead=True
            ):
                ids += [
                    i["pk"]["S"][len(AGENT_PREFIX) :]
                    for i in page["Items"]
                    if i["pk"]["S"].startswith(AGENT_PREFIX)
                ]
        return sorted(ids)

    def apply(
        self,
        agents: dict[str, dict[str, Any]],
        *,
        removed: list[str],
        groups: dict[str, dict[str, Any]],
        removed_groups: list[str],
        users: dict[str, dict[str, list[str]]],
        policy: dict[str, Any],
        previous_digest: str | None,
        audit: Write,
    ) -> bool:
        """Write the compiled policy; False when someone else applied since `previous_digest` was read.

        Each agent item is updated field by field, so its secret hash and its lock (too many failed
        authentications) survive; the users directory is replaced whole; the policy item is written last
        and only if nobody applied in between."""
        writes: list[dict[str, Any]] = []
        for client_id, item in agents.items():
            fields = {k: v for k, v in item.items() if k not in ("client_id", LOCK_ATTRIBUTE)}
            names = {f"#f{i}": k for i, k in enumerate(fields)}
            values = {
                f":v{i}": _serializer.serialize(v) for i, v in enumerate(fields.values()) if v is not None
            }
            sets = [f"#f{i} = :v{i}" for i, v in enumerate(fields.values()) if v is not None]
            removes = [f"#f{i}" for i, v in enumerate(fields.values()) if v is None]
            if item.get("auth_method") not in ("client_secret_basic", "client_secret_post"):
                names["#secret"] = "secret_hash"
                names["#previous"] = "previous_secret_hash"
                names["#previous_until"] = "previous_secret_expires_at"
                removes += ["#secret", "#previous", "#previous_until"]
            expression = "SET client_id = :id, " + ", ".join(sets)
            if removes:
                expression += " REMOVE " + ", ".join(removes)
            writes.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": AGENT_PREFIX + client_id}},
                        "UpdateExpression": expression,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": {":id": {"S": client_id}, **values},
                    }
                }
            )
        for client_id in removed:
            writes.append(
                {"Delete": {"TableName": self._table, "Key": {"pk": {"S": AGENT_PREFIX + client_id}}}}
            )
        for group, group_item in groups.items():
            item = to_item({"pk": APPROVERS_PREFIX + group, **group_item})
            writes.append({"Put": {"TableName": self._table, "Item": item}})
        for group in removed_groups:
            writes.append(
                {"Delete": {"TableName": self._table, "Key": {"pk": {"S": APPROVERS_PREFIX + group}}}}
            )
        users_item = to_item({"pk": USERS_KEY, **users_to_data(users)})
        writes.append({"Put": {"TableName": self._table, "Item": users_item}})
        policy_write: dict[str, Any] = {
            "Put": {"TableName": self._table, "Item": to_item({"pk": POLICY_KEY, **policy})}
        }
        if previous_digest is None:
            policy_write["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            policy_write["Put"]["ConditionExpression"] = "digest = :previous"
            policy_write["Put"]["ExpressionAttributeValues"] = {":previous": {"S": previous_digest}}
        writes.append(policy_write)
        writes.append(audit.operation)
        # One transaction holds 100 writes; larger policies go in chunks, the policy item and the
        # audit record last, so an interrupted apply is visible and a re-run finishes it.
        chunks = [writes[max(0, end - 99) : end] for end in range(len(writes), 0, -99)][::-1]
        # Every earlier chunk checks the policy item too: an apply planned against another policy stops
        # at its first chunk instead of writing half of itself.
        check = {"ConditionCheck": {"TableName": self._table, "Key": {"pk": {"S": POLICY_KEY}}}}
        check["ConditionCheck"].update(
            {
                k: v
                for k, v in policy_write["Put"].items()
                if k in ("ConditionExpression", "ExpressionAttributeValues")
            }
        )
        chunks = [[*chunk, check] for chunk in chunks[:-1]] + chunks[-1:]

        def write_chunks() -> None:
            for chunk in chunks:
                self._client.transact_write_items(TransactItems=chunk)

        return conditional_write(write_chunks)

    def set_secret_hash(
        self,
        client_id: str,
        secret_hash: str,
        rotated_at: str,
        audit: Write,
        *,
        previous: PreviousSecret | None = None,
    ) -> bool:
        """False when the agent does not exist or does not authenticate with a secret, or (with a
        `previous` secret kept for a grace period) when its secret changed since it was read. The audit
        record is written in the same transaction: no rotation without its record. A lock from failed
        authentications ends with the old secret: the owner's new one works at once. Without `previous`,
        any earlier previous secret goes too: `--grace 0` ends every old secret at once."""
        values = {
            ":h": {"S": secret_hash},
            ":t": {"S": rotated_at},
            ":basic": {"S": "client_secret_basic"},
            ":post": {"S": "client_secret_post"},
        }
        condition = "attribute_exists(pk) AND auth_method IN (:basic, :post)"
        if previous is None:
            expression = (
                "SET secret_hash = :h, secret_rotated_at = :t "
                f"REMOVE {LOCK_ATTRIBUTE}, previous_secret_hash, previous_secret_expires_at"
            )
        else:
            expression = (
                "SET secret_hash = :h, secret_rotated_at = :t, previous_secret_hash = :old, "
                f"previous_secret_expires_at = :until REMOVE {LOCK_ATTRIBUTE}"
            )
            condition += " AND secret_hash = :old"
            values |= {":old": {"S": previous.secret_hash}, ":until": {"N": str(previous.expires_at)}}
        update = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": AGENT_PREFIX + client_id}},
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }
        return conditional_write(
            lambda: self._client.transact_write_items(TransactItems=[update, audit.operation])
        )

    def lock(self, client_id: str, until: int) -> None:
        """Refuse every authentication of the agent until `until` (oauth/throttle.py). Only an existing
        agent: a removed one is not brought back as a stub."""
        conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": AGENT_PREFIX + client_id}},
                UpdateExpression=f"SET {LOCK_ATTRIBUTE} = :until",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )
        )


class ReplayTable:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        return conditional_write(
            lambda: self._client.put_item(
                TableName=self._table,
                Item={"pk": {"S": key}, "expires_at": {"N": str(expires_at)}},
                # An expired marker may be overwritten: TTL deletion lags, the expiry is checked here.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        )
