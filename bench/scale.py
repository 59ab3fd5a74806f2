"""Target 4: token latency does not grow with the number of agents or grants.

The same token request (support-bot, client_secret_basic, naming a scope, so its JIT grants are read
too) is timed with the example policy's handful of agents, then again after 10,000 more agents and
1,000 active JIT grants (of other agents) are written straight into the tables. Each agent is one item
read by key and each agent's grants one partition, so the ratio of the two medians should stay near 1.
The two phases cannot be interleaved (the tables only grow), so this target runs last and compares the
medians of the two phases, each after its own warm-up.

Each request is also split into our code and its AWS calls (every botocore call timed, moto included),
and moto's own Query is timed inside moto: the Query of the agent's grants partition returns the same
items in both phases, but moto answers it by walking every item of the table, so the split shows how
much of the ratio is ours and how much is moto's. `python bench/scale.py` runs this target alone.
"""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from common import BenchEnv, TargetResult, call_handler, log, median_ms

BOUND = 1.2
AGENTS = 10_000
GRANTS = 1_000
SAMPLES = 300
WARMUP = 30
SCOPED_BODY = b"grant_type=client_credentials&scope=crm.contacts.read"


def _batches(items: list[dict[str, Any]], size: int = 25) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def populate(env: BenchEnv) -> None:
    from agent_auth.adapters.aws import AwsClients

    dynamodb = AwsClients(env.settings.region).dynamodb
    template = dynamodb.get_item(TableName=env.settings.agents_table, Key={"pk": {"S": "agent#support-bot"}})[
        "Item"
    ]
    agents = []
    for i in range(AGENTS):
        name = f"scale-agent-{i:05d}"
        agents.append({**template, "pk": {"S": f"agent#{name}"}, "client_id": {"S": name}})
    grants = []
    for i in range(GRANTS):
        owner = f"scale-agent-{i % AGENTS:05d}"
        grants.append(
            {
                "pk": {"S": f"client#{owner}"},
                "sk": {"S": f"req_scale{i}"},
                "grant_id": {"S": f"req_scale{i}"},
                "client_id": {"S": owner},
                "scopes": {"L": [{"S": "crm.contacts.write"}]},
                "audience": {"S": "crm"},
                "audience_uri": {"S": "https://crm.example.com"},
                "starts_at": {"N": "0"},
                "ends_at": {"N": "99999999999"},
                "request_id": {"S": f"req_scale{i}"},
            }
        )
    for table, items in ((env.settings.agents_table, agents), (env.settings.grants_table, grants)):
        for number, batch in enumerate(_batches(items)):
            dynamodb.batch_write_item(
                RequestItems={table: [{"PutRequest": {"Item": item}} for item in batch]}
            )
            if number % 100 == 0:
                log(f"  {table}: {number * 25} of {len(items)} written")


@dataclass
class Sample:
    total_ns: int
    aws_ns: int = 0
    """Inside botocore's _make_api_call: serialization, moto, parsing."""
    moto_query_ns: int = 0
    """Inside moto's Table.query alone."""
    items_returned: int = 0
    """Items DynamoDB handed back to our code (GetItem, Query): what our code touches."""
    calls: list[str] = field(default_factory=list)


@contextmanager
def split() -> Iterator[list[Sample]]:
    """Times every AWS call and moto's Query while the block runs; the caller appends one Sample per
    request and the recorders add to the last one."""
    from botocore.client import BaseClient
    from moto.dynamodb.models.table import Table

    samples: list[Sample] = []
    make_call, moto_query = BaseClient._make_api_call, Table.query

    def timed_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        start = time.perf_counter_ns()
        result = make_call(client, operation, params)
        if samples:
            samples[-1].aws_ns += time.perf_counter_ns() - start
            samples[-1].calls.append(f"{client.meta.service_model.endpoint_prefix}:{operation}")
            samples[-1].items_returned += len(result.get("Items", [])) + int("Item" in result)
        return result

    def timed_query(table: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        result = moto_query(table, *args, **kwargs)
        if samples:
            samples[-1].moto_query_ns += time.perf_counter_ns() - start
        return result

    with (
        mock.patch.object(BaseClient, "_make_api_call", timed_call),
        mock.patch.object(Table, "query", timed_query),
    ):
        yield samples


def phase(env: BenchEnv) -> list[Sample]:
    secret = env.dev.credentials["support-bot"]["client_secret"]
    authorization = "Basic " + base64.b64encode(f"support-bot:{secret}".encode()).decode()
    headers = [("Authorization", authorization), ("Content-Type", "application/x-www-form-urlencoded")]
    events = [env.event((headers, SCOPED_BODY)) for _ in range(SAMPLES + WARMUP)]
    with split() as samples:
        for event in events:
            sample = Sample(total_ns=0)
            samples.append(sample)
            start = time.perf_counter_ns()
            call_handler(event)
            sample.total_ns = time.perf_counter_ns() - start
    return samples[WARMUP:]


def _median(values: list[int]) -> float:
    return statistics.median(values) / 1e6


def breakdown(samples: list[Sample]) -> dict[str, Any]:
    return {
        "median_ms": median_ms([s.total_ns for s in samples]),
        "ours_ms": _median([s.total_ns - s.aws_ns for s in samples]),
        "aws_calls_ms": _median([s.aws_ns for s in samples]),
        "moto_query_ms": _median([s.moto_query_ns for s in samples]),
        "items_returned": max(s.items_returned for s in samples),
        "calls": sorted(set(samples[-1].calls)),
    }


def run(env: BenchEnv) -> list[TargetResult]:
    log(f"target 4: {SAMPLES} token requests with the example policy's agents")
    small = breakdown(phase(env))
    log(f"target 4: writing {AGENTS:,} agents and {GRANTS:,} active grants")
    populate(env)
    log(f"target 4: {SAMPLES} token requests with {AGENTS:,} more agents and {GRANTS:,} grants")
    large = breakdown(phase(env))
    small_ms, large_ms = small["median_ms"], large["median_ms"]
    ratio = large_ms / small_ms
    ours = large["ours_ms"] / small["ours_ms"]
    return [
        TargetResult(
            number=4,
            title="scale (10,000 agents, 1,000 grants)",
            figure=f"{large_ms:.2f} ms / {small_ms:.2f} ms = {ratio:.2f}x",
            target=f"<= {BOUND}x",
            passed=ratio <= BOUND,
            ratio=round(ratio, 3),
            note=(
                f"our code {large['ours_ms']:.2f} / {small['ours_ms']:.2f} ms = {ours:.2f}x, "
                f"{large['items_returned']} vs {small['items_returned']} items read; "
                f"moto's Query {large['moto_query_ms']:.2f} / {small['moto_query_ms']:.2f} ms"
            ),
            data={
                "agents": AGENTS,
                "grants": GRANTS,
                "small_median_ms": small_ms,
                "large_median_ms": large_ms,
                "ours_ratio": round(ours, 3),
                "small": small,
                "large": large,
            },
        )
    ]


if __name__ == "__main__":
    import json
    import sys

    with BenchEnv() as bench_env:
        [result] = run(bench_env)
    print(
        json.dumps(result.to_json(), indent=2) if "--json" in sys.argv else f"{result.figure}; {result.note}"
    )
