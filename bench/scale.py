"""Target 4: token latency does not grow with the number of agents or grants.

The same token request (support-bot, client_secret_basic, naming a scope, so its JIT grants are read
too) is timed with the example policy's handful of agents, then again after 10,000 more agents and
1,000 active JIT grants (of other agents) are written straight into the tables. Each agent is one item
read by key and each agent's grants one partition, so the ratio of the two medians should stay near 1.
The two phases cannot be interleaved (the tables only grow), so this target runs last and compares the
medians of the two phases, each after its own warm-up.
"""

from __future__ import annotations

import base64
from typing import Any

from common import BenchEnv, TargetResult, call_handler, log, median_ms, timed_ns

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


def phase(env: BenchEnv) -> list[int]:
    secret = env.dev.credentials["support-bot"]["client_secret"]
    authorization = "Basic " + base64.b64encode(f"support-bot:{secret}".encode()).decode()
    headers = [("Authorization", authorization), ("Content-Type", "application/x-www-form-urlencoded")]
    events = [env.event((headers, SCOPED_BODY)) for _ in range(SAMPLES + WARMUP)]
    samples = [timed_ns(lambda event=event: call_handler(event)) for event in events]  # type: ignore[misc]
    return samples[WARMUP:]


def run(env: BenchEnv) -> list[TargetResult]:
    log(f"target 4: {SAMPLES} token requests with the example policy's agents")
    small = phase(env)
    log(f"target 4: writing {AGENTS:,} agents and {GRANTS:,} active grants")
    populate(env)
    log(f"target 4: {SAMPLES} token requests with {AGENTS:,} more agents and {GRANTS:,} grants")
    large = phase(env)
    small_ms, large_ms = median_ms(small), median_ms(large)
    ratio = large_ms / small_ms
    return [
        TargetResult(
            number=4,
            title="scale (10,000 agents, 1,000 grants)",
            figure=f"{large_ms:.2f} ms / {small_ms:.2f} ms = {ratio:.2f}x",
            target=f"<= {BOUND}x",
            passed=ratio <= BOUND,
            ratio=round(ratio, 3),
            data={
                "agents": AGENTS,
                "grants": GRANTS,
                "small_median_ms": small_ms,
                "large_median_ms": large_ms,
            },
        )
    ]
