"""Which keys a listing reads, in which order, and where it stops (adapters/audit_table.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent_auth.adapters.audit_table import (
    UNATTRIBUTED,
    AuditTable,
    KeyRange,
    audit_item,
    hours_newest_first,
    plan,
)
from agent_auth.adapters.dynamodb import from_item, to_item
from agent_auth.audit import AuditQuery, AuditRecord, iso_millis, unverified

NOW = datetime(2026, 12, 1, 22, 10, tzinfo=UTC).timestamp()
RETENTION = timedelta(days=30)
HOUR = 3600.0


def test_the_last_three_hours_read_four_buckets_newest_first() -> None:
    # Given a listing of the last three hours at 22:10
    ranges = plan(AuditQuery(since=NOW - 3 * HOUR, now=NOW), RETENTION)

    # Then it reads the by-hour index from 22 back to 19, each from `since` on
    assert [r.value for r in ranges] == ["2026-12-01T22", "2026-12-01T21", "2026-12-01T20", "2026-12-01T19"]
    assert {(r.index, r.attribute, r.lower) for r in ranges} == {
        ("by-hour", "hour", iso_millis(NOW - 3 * HOUR))
    }


def test_a_writer_clock_ahead_of_the_readers_is_covered_near_the_hour() -> None:
    # Given a reader at 22:57, when a Lambda's clock may already be past 23:00
    late = datetime(2026, 12, 1, 22, 57, tzinfo=UTC).timestamp()

    # Then the next hour's bucket is read first
    assert hours_newest_first(late - 60, late, RETENTION) == ["2026-12-01T23", "2026-12-01T22"]


def test_the_walk_stops_at_the_retention_period() -> None:
    # Given `since` long before the oldest record can exist
    buckets = hours_newest_first(0, NOW, timedelta(days=2))

    # Then only the hours of the retention period are read (and the current one)
    assert len(buckets) == 2 * 24 + 1 and buckets[0] == "2026-12-01T22" and buckets[-1] == "2026-11-29T22"


def test_since_in_the_future_reads_nothing() -> None:
    assert hours_newest_first(NOW + 2 * HOUR, NOW, RETENTION) == []


def test_an_agent_reads_its_own_partition_of_the_table() -> None:
    assert plan(AuditQuery(since=NOW - HOUR, now=NOW, agent="support-bot"), RETENTION) == [
        KeyRange(None, "pk", "agent#support-bot", iso_millis(NOW - HOUR))
    ]


def test_an_unverified_fingerprint_reads_the_fixed_partition_filtered_on_it() -> None:
    fingerprint = str(unverified("someone"))
    [key_range] = plan(AuditQuery(since=NOW - HOUR, now=NOW, agent=fingerprint), RETENTION)
    assert (key_range.index, key_range.value, key_range.match) == (
        None,
        UNATTRIBUTED,
        (("client_id", fingerprint),),
    )


def test_a_user_reads_the_user_index_and_an_agent_narrows_it() -> None:
    query = AuditQuery(since=NOW - HOUR, now=NOW, user="Alice@Example.com", agent="support-bot")
    [key_range] = plan(query, RETENTION)
    assert (key_range.index, key_range.attribute, key_range.value, key_range.match) == (
        "by-user",
        "user_key",
        "user#alice@example.com",
        (("client_id", "support-bot"),),
    )


def test_a_name_that_no_record_can_carry_reads_nothing() -> None:
    assert plan(AuditQuery(since=NOW - HOUR, now=NOW, agent="Not A Name"), RETENTION) == []


# --- reading: one Query per page, newest first, stopping at the limit ----------------------------


class FakeDynamo:
    """Query over items in memory, as DynamoDB answers it: by key, sort key descending, Limit, pages."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = [to_item(i) for i in items]
        self.calls: list[dict[str, Any]] = []

    def query(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        names, values = params["ExpressionAttributeNames"], params["ExpressionAttributeValues"]
        key, lower = values[":k"]["S"], values[":lower"]["S"]
        found = sorted(
            (
                i
                for i in self.items
                if names["#k"] in i and i[names["#k"]]["S"] == key and i["sk"]["S"] >= lower
            ),
            key=lambda i: i["sk"]["S"],
            reverse=True,
        )
        if "ExclusiveStartKey" in params:
            found = [i for i in found if i["sk"]["S"] < params["ExclusiveStartKey"]["sk"]["S"]]
        page, rest = found[: params["Limit"]], found[params["Limit"] :]
        answer: dict[str, Any] = {"Items": page}
        if rest:
            answer["LastEvaluatedKey"] = {"sk": page[-1]["sk"]}
        return answer

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"only Query may be called, not {name}")


def stored(minutes_ago: list[int], **fields: Any) -> list[dict[str, Any]]:
    return [
        audit_item(AuditRecord(action="token.issue", decision="allow", at=NOW - 60 * m, **fields), RETENTION)
        for m in minutes_ago
    ]


def test_pages_come_newest_first_across_buckets_and_stop_at_the_limit() -> None:
    # Given records every 20 minutes over five hours
    dynamo = FakeDynamo(stored(list(range(0, 300, 20)), client_id="support-bot"))
    table = AuditTable(dynamo, "audit", retention_days=30)

    # When the last day is listed, 7 at most
    pages = list(table.pages(AuditQuery(since=NOW - 24 * HOUR, now=NOW, limit=7)))

    # Then the 7 newest come, newest first, and no bucket past the 7th record is read
    times = [from_item(to_item(r))["time"] for page in pages for r in page]
    assert times == [iso_millis(NOW - 60 * m) for m in range(0, 140, 20)]
    read = [c["ExpressionAttributeValues"][":k"]["S"] for c in dynamo.calls]
    assert read == ["2026-12-01T22", "2026-12-01T21", "2026-12-01T20"]
    # And every call is a backwards Query on the index asking only for what is still wanted
    assert all(c["IndexName"] == "by-hour" and c["ScanIndexForward"] is False for c in dynamo.calls)
    assert [c["Limit"] for c in dynamo.calls] == [7, 6, 3]


def test_a_key_with_more_than_a_page_is_read_page_by_page(monkeypatch: Any) -> None:
    # Given one agent's 12 records and pages of 5
    monkeypatch.setattr("agent_auth.adapters.audit_table.PAGE_SIZE", 5)
    dynamo = FakeDynamo(stored(list(range(12)), client_id="support-bot"))
    table = AuditTable(dynamo, "audit", retention_days=30)

    # When the agent's last hour is listed
    pages = list(table.pages(AuditQuery(since=NOW - HOUR, now=NOW, agent="support-bot", limit=100)))

    # Then three Query calls on the agent's partition bring 5, 5 and 2, each after the last
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [c.get("ExclusiveStartKey") is not None for c in dynamo.calls] == [False, True, True]
    assert all(
        "IndexName" not in c and c["ExpressionAttributeValues"][":k"]["S"] == "agent#support-bot"
        for c in dynamo.calls
    )


def test_empty_buckets_yield_no_pages() -> None:
    dynamo = FakeDynamo([])
    table = AuditTable(dynamo, "audit", retention_days=30)
    assert list(table.pages(AuditQuery(since=NOW - 2 * HOUR, now=NOW))) == []
    assert len(dynamo.calls) == 3  # hours 22, 21, 20: one Query each, no scan
