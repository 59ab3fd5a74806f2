"""Target 9: the audit trail at scale. Listing the last hour, newest first, out of 100,000 records.

    .venv/bin/python bench/audit.py                  # on its own (run.py runs it too)
    .venv/bin/python bench/audit.py --records 20000  # a smaller table, for a quick look

A moto audit table built from schema.AUDIT gets 100,000 records spread over the last day (batch
writes of 25, as AuditTable keys them), then `AuditTable.pages` lists the last hour the way
`agent-auth audit --since 1h` does: with the default limit, and the whole hour. Every AWS call is
counted at botocore's choke point: the target holds when each is a Query on the by-hour index, one
per page, and none is a Scan. The time is reported whole and as what our code adds to the calls:
moto answers a Query by walking every item of the table, where DynamoDB reads only the page, so the
whole figure bounds the real cost from far above and our code's share is the part we own.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from calls import recording
from common import TargetResult, log

RECORDS = 100_000
DAY = 86_400.0
HOUR = 3_600.0
BATCH = 25
"""BatchWriteItem takes 25 items at most."""
REGION = "us-east-1"
TABLE = "bench-audit"
RETENTION = timedelta(days=400)
SAMPLES = 3
AGENTS = [f"agent-{i:03d}" for i in range(200)]
USERS = [f"user{i:04d}@example.com" for i in range(1_000)]


def _records(count: int, now: float) -> list[Any]:
    """A day of decisions: mostly token issues of 200 agents, a share acting for users, a share
    refused (some from unknown clients, as fingerprints), at uniformly random times."""
    from agent_auth.audit import AuditRecord, unverified

    rng = random.Random(9)
    records = []
    for _ in range(count):
        kind = rng.random()
        fields: dict[str, Any] = {"client_id": rng.choice(AGENTS), "source_ip": "203.0.113.7"}
        if kind < 0.2:
            fields |= {"user": rng.choice(USERS), "actor_chain": (fields["client_id"],)}
            fields |= {"token_family": f"fam-{rng.getrandbits(32):08x}", "action": "token.exchange"}
        elif kind < 0.3:
            fields |= {"client_id": unverified(f"ghost-{rng.getrandbits(16)}"), "decision": "deny"}
            fields |= {"reason": "unknown_client"}
        records.append(
            AuditRecord(
                action=fields.pop("action", "token.issue"),
                decision=fields.pop("decision", "allow"),
                at=now - rng.uniform(0, DAY),
                grant_type="client_credentials",
                auth_method="client_secret_basic",
                scope_granted="crm.contacts.read" if fields.get("reason") is None else None,
                policy_rule=f"agents.{fields['client_id']}.roles" if fields.get("reason") is None else None,
                **fields,
            )
        )
    return records


def _fill(client: Any, count: int, now: float) -> None:
    from agent_auth.adapters.audit_table import audit_item
    from agent_auth.adapters.dynamodb import to_item

    started = time.perf_counter()
    records = _records(count, now)
    for start in range(0, count, BATCH):
        requests = [
            {"PutRequest": {"Item": to_item(audit_item(r, RETENTION))}}
            for r in records[start : start + BATCH]
        ]
        pending: dict[str, Any] = {TABLE: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        done = start + len(requests)
        if done % 10_000 == 0 or done == count:
            log(f"  {done:,} of {count:,} records written ({time.perf_counter() - started:.0f} s)")


@dataclass
class Listing:
    found: int
    calls: list[Any]
    """Every AWS call the listing made (bench/calls.py's recorder)."""
    newest_first: bool
    total_ms: float
    aws_ms: float
    """Time inside the Query calls: moto's, here."""

    @property
    def ours_ms(self) -> float:
        """Planning, paging and turning items into records: what our code adds to the calls."""
        return self.total_ms - self.aws_ms


class _TimedClient:
    """The DynamoDB client, with the time spent inside each `query` added up."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.ns = 0

    def query(self, **params: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return self._client.query(**params)
        finally:
            self.ns += time.perf_counter_ns() - started


def _list(client: Any, now: float, limit: int) -> Listing:
    """One listing of the last hour, newest first, as `agent-auth audit --since 1h --limit N` makes it."""
    from agent_auth.adapters.audit_table import AuditTable
    from agent_auth.audit import AuditQuery

    timed = _TimedClient(client)
    table = AuditTable(timed, TABLE, retention_days=RETENTION.days)
    query = AuditQuery(since=now - HOUR, now=now, limit=limit)
    with recording() as record:
        started = time.perf_counter_ns()
        times = [r["time"] for page in table.pages(query) for r in page]
        elapsed = time.perf_counter_ns() - started
    newest_first = times == sorted(times, reverse=True)
    return Listing(len(times), record.calls, newest_first, elapsed / 1e6, timed.ns / 1e6)


def _indexed_only(calls: list[Any], index: str) -> bool:
    return bool(calls) and all(
        c.service == "dynamodb" and c.operation == "Query" and c.params.get("IndexName") == index
        for c in calls
    )


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.1f} ms"


def run(records: int = RECORDS) -> list[TargetResult]:
    from moto import mock_aws

    from agent_auth import schema
    from agent_auth.adapters.audit_table import BY_HOUR, PAGE_SIZE
    from agent_auth.adapters.aws import AwsClients
    from agent_auth.audit import DEFAULT_LIMIT
    from agent_auth.devserver.resources import create_table

    with mock_aws():
        client = AwsClients(REGION).dynamodb
        create_table(client, schema.AUDIT, TABLE)
        now = time.time()
        log(f"target 9: writing {records:,} audit records over the last day into moto (batches of {BATCH})")
        _fill(client, records, now)
        log(f"target 9: listing the last hour, newest first, limit {DEFAULT_LIMIT}, {SAMPLES} times")
        samples = [_list(client, now, DEFAULT_LIMIT) for _ in range(SAMPLES)]
        log("target 9: listing the whole last hour, page by page")
        hour = _list(client, now, records)

    first = samples[0]
    total = statistics.median(s.total_ms for s in samples)
    ours = statistics.median(s.ours_ms for s in samples)
    # The last hour touches at most the clock-skew bucket, the current hour and the one before: one
    # Query per bucket, plus one per further page of PAGE_SIZE records.
    buckets = 3
    passed = (
        _indexed_only(first.calls, BY_HOUR.name)
        and _indexed_only(hour.calls, BY_HOUR.name)
        and len(first.calls) <= buckets + math.ceil(DEFAULT_LIMIT / PAGE_SIZE)
        and len(hour.calls) <= buckets + math.ceil(hour.found / PAGE_SIZE)
        and first.found == min(DEFAULT_LIMIT, hour.found)
        and first.newest_first
        and hour.newest_first
    )
    scans = sum(1 for c in first.calls + hour.calls if c.operation == "Scan")
    figure = (
        f"limit {DEFAULT_LIMIT}: {len(first.calls)} Query on {BY_HOUR.name}, {_seconds(total)} "
        f"(our code {ours:.1f} ms); whole hour, {hour.found:,} records: {len(hour.calls)} Query, "
        f"{_seconds(hour.total_ms)} (our code {hour.ours_ms:.0f} ms); {scans} Scan"
    )
    return [
        TargetResult(
            number=9,
            title=f"audit: last hour of {records:,} records",
            figure=figure,
            target="Query on an index, one per page, no Scan",
            passed=passed,
            note="the rest is moto, which walks every item to answer a Query",
            data={
                "records": records,
                "default_limit": DEFAULT_LIMIT,
                "page_size": PAGE_SIZE,
                "default_listing": {
                    "found": first.found,
                    "calls": [f"{c.operation} {c.params.get('IndexName')}" for c in first.calls],
                    "median_ms": round(total, 2),
                    "our_code_median_ms": round(ours, 2),
                    "samples_ms": [round(s.total_ms, 2) for s in samples],
                },
                "whole_hour": {
                    "found": hour.found,
                    "calls": len(hour.calls),
                    "operations": sorted({f"{c.operation} {c.params.get('IndexName')}" for c in hour.calls}),
                    "ms": round(hour.total_ms, 1),
                    "our_code_ms": round(hour.ours_ms, 1),
                },
            },
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=RECORDS, help=f"records to write (default {RECORDS:,})"
    )
    args = parser.parse_args(argv)
    [result] = run(args.records)
    print(f"target 9  {result.title}  {result.figure} ({result.target}), {result.note}  {result.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
