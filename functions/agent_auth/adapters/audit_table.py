"""The audit trail in DynamoDB (schema.AUDIT): how a record is keyed, and how a listing reads it back.

Keys. No item is keyed on what an unauthenticated client sent (docs/security.md), so a client that
swaps its id and secret cannot put the secret, or anything derived from it, into a key:
- `pk`: "agent#<name>" only when the record's client_id is an agent name (the client endpoint records
  a proven or an existing agent, and anything else as an `unverified:` fingerprint, which is never a
  name); "operator#<name>" for an operator's change that names no agent; UNATTRIBUTED for the rest.
- `sk`: "<ISO-8601 time, milliseconds>#<record id>", so each key reads newest first backwards.
- `hour`: the hour bucket, "2026-12-01T22" (UTC), keys the by-hour index: the whole trail by time.
- `user_key`: "user#<email, lower case>" keys the by-user index, sparse: only records acting for a user.

Why an hour bucket, and why it is not a hot partition: every record written in one hour lands on one
by-hour key, and every unattributed record on one table key. One partition takes 1,000 writes a second;
API Gateway throttles the whole stage at 100 requests a second with bursts of 200 (infra api.py), and a
request writes one record, so either key stays at a fifth of that at most. (Raise the throttle past
that and the bucket needs shards, "<hour>#<n>", read in parallel and merged.) An hour rather than a day
keeps each key small: listing the last hour reads one or two keys, never a day's records.

Reading: `plan` turns a query into the keys to read, newest first; `pages` reads them one Query call per
page (ScanIndexForward=False, Limit = what is still wanted), yields each page as it arrives and stops
at the limit. Nothing here ever scans.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_auth import schema
from agent_auth.adapters.dynamodb import aws_call, from_item, numbers_to_int, to_item
from agent_auth.audit import AuditQuery, AuditRecord, is_unverified, iso_millis
from agent_auth.names import NAME_PATTERN
from agent_auth.ports import Write

AGENT_PREFIX = "agent#"
OPERATOR_PREFIX = "operator#"
USER_PREFIX = "user#"
UNATTRIBUTED = "unattributed"
"""The one partition of records that name no proven or existing agent and no operator."""

BY_HOUR, BY_USER = schema.AUDIT_BY_HOUR, schema.AUDIT_BY_USER
KEY_ATTRIBUTES = frozenset({*schema.AUDIT.key_attributes(), "expires_at", "day"})
"""Keys and retention (and the former day bucket): how the item is stored, not part of the record."""

PAGE_SIZE = 500
"""At most this many records per Query call, so a long listing prints as it goes."""
CLOCK_SKEW = 300.0
"""Seconds the writers' clocks (Lambda) may run ahead of the reader's: the listing starts at the bucket
of `now` plus this, so a record written a moment "in the future" is still found."""
MAX_USER_LENGTH = 320
"""An email address is at most 320 characters (RFC 5321 §4.5.3.1); a longer user is not indexed."""
_AGENT_NAME = re.compile(NAME_PATTERN)


def is_agent_name(value: str | None) -> bool:
    return value is not None and _AGENT_NAME.fullmatch(value) is not None


def partition_key(record: AuditRecord) -> str:
    """The table key of a record: never built from a client_id that is not an agent name."""
    if record.client_id is not None:
        return AGENT_PREFIX + record.client_id if is_agent_name(record.client_id) else UNATTRIBUTED
    if record.operator:
        return OPERATOR_PREFIX + record.operator
    return UNATTRIBUTED


def sort_key(record: AuditRecord) -> str:
    return f"{record.timestamp}#{record.id}"


def hour_bucket(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H")


def user_key(user: str | None) -> str | None:
    if not user or len(user) > MAX_USER_LENGTH:
        return None
    return USER_PREFIX + user.lower()


def audit_item(record: AuditRecord, retention: timedelta) -> dict[str, Any]:
    """The record's attributes, then its keys (so no record field can stand in for a key)."""
    item: dict[str, Any] = {
        **record.to_dict(),
        schema.AUDIT.partition_key: partition_key(record),
        "sk": sort_key(record),
        BY_HOUR.partition_key: hour_bucket(record.at),
        "expires_at": int(record.at + retention.total_seconds()),
    }
    indexed_user = user_key(record.user)
    if indexed_user:
        item[BY_USER.partition_key] = indexed_user
    return item


@dataclass(frozen=True)
class KeyRange:
    """One key of the table or of an index, read newest first down to `lower`."""

    index: str | None
    attribute: str
    value: str
    lower: str
    """The oldest sort key wanted: the ISO time of `since`."""
    match: tuple[tuple[str, str], ...] = ()
    """Attributes that must equal these values (a filter on what the key found)."""


def hours_newest_first(since: float, now: float, retention: timedelta) -> list[str]:
    """The hour buckets a listing reads: from `now` (plus the clock skew) back to `since`, and never
    older than the retention period, where nothing is left to find."""
    newest = _hour_start(now + CLOCK_SKEW)
    oldest = _hour_start(max(since, now - retention.total_seconds()))
    count = int((newest - oldest) // 3600) + 1 if newest >= oldest else 0
    return [hour_bucket(newest - 3600 * i) for i in range(count)]


def _hour_start(at: float) -> float:
    return at - at % 3600


def plan(query: AuditQuery, retention: timedelta) -> list[KeyRange]:
    """The keys a query reads, in the order whose records come newest first."""
    lower = iso_millis(query.since)
    if query.user is not None:
        key = user_key(query.user)
        if key is None:
            return []
        match = (("client_id", query.agent),) if query.agent is not None else ()
        return [KeyRange(BY_USER.name, BY_USER.partition_key, key, lower, match)]
    if query.agent is not None:
        if is_agent_name(query.agent):
            return [KeyRange(None, schema.AUDIT.partition_key, AGENT_PREFIX + query.agent, lower)]
        if is_unverified(query.agent):
            # Unproven clients share one partition; their fingerprint picks their records out of it.
            match = (("client_id", query.agent),)
            return [KeyRange(None, schema.AUDIT.partition_key, UNATTRIBUTED, lower, match)]
        return []
    return [
        KeyRange(BY_HOUR.name, BY_HOUR.partition_key, hour, lower)
        for hour in hours_newest_first(query.since, query.now, retention)
    ]


def record_from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in numbers_to_int(from_item(item)).items() if k not in KEY_ATTRIBUTES}


class AuditTable:
    """The AuditLog port (write, entry) and the operators' AuditTrail (pages)."""

    def __init__(self, client: Any, table: str, retention_days: int = 400) -> None:
        self._client = client
        self._table = table
        self._retention = timedelta(days=retention_days)

    def write(self, record: AuditRecord) -> None:
        with aws_call():
            self._client.put_item(TableName=self._table, Item=self._item(record))

    def entry(self, record: AuditRecord) -> Write:
        """The record as one write of a transaction, for changes audited atomically."""
        return Write({"Put": {"TableName": self._table, "Item": self._item(record)}})

    def _item(self, record: AuditRecord) -> dict[str, Any]:
        return to_item(audit_item(record, self._retention))

    def pages(self, query: AuditQuery) -> Iterator[list[dict[str, Any]]]:
        """The records of `query`, newest first, one Query call per page, `query.limit` at most."""
        remaining = query.limit
        for key_range in plan(query, self._retention):
            start: dict[str, Any] | None = None
            while remaining > 0:
                result = self._query(key_range, min(remaining, PAGE_SIZE), start)
                page = [record_from_item(i) for i in result.get("Items", [])]
                if page:
                    remaining -= len(page)
                    yield page
                start = result.get("LastEvaluatedKey")
                if start is None:
                    break
            if remaining <= 0:
                return

    def _query(self, key_range: KeyRange, limit: int, start: dict[str, Any] | None) -> Any:
        names = {"#k": key_range.attribute, "#s": "sk"}
        values: dict[str, Any] = {":k": {"S": key_range.value}, ":lower": {"S": key_range.lower}}
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#k = :k AND #s >= :lower",
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if key_range.index:
            params["IndexName"] = key_range.index
        if key_range.match:
            conditions = []
            for i, (attribute, value) in enumerate(key_range.match):
                names[f"#m{i}"], values[f":m{i}"] = attribute, {"S": value}
                conditions.append(f"#m{i} = :m{i}")
            params["FilterExpression"] = " AND ".join(conditions)
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = values
        if start:
            params["ExclusiveStartKey"] = start
        with aws_call():
            return self._client.query(**params)
