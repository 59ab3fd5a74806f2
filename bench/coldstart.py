"""Target 3: cold start. Fresh interpreters, each timing itself from its first statement:

  baseline  `import boto3` and a DynamoDB and a KMS client, made as AwsClients makes them
  handler   `import agent_auth.handlers.token` and `endpoint()`, which builds the same two clients

Interpreter start-up is outside both figures. The two kinds alternate; one of each runs first to
warm the bytecode caches and is dropped. Each child reports which botocore clients exist at the end,
so a handler that stopped building its clients at init cannot pass unnoticed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

from common import REPO, TargetResult, log

BOUND = 1.3
PROCESSES = 15
REGION = "us-east-1"
CONFIG_KWARGS: dict[str, Any] = {
    "connect_timeout": 1,
    "read_timeout": 3,
    "retries": {"mode": "standard", "max_attempts": 2},
    "tcp_keepalive": True,
}
"""agent_auth.adapters.aws.CLIENT_CONFIG, spelled out so the baseline imports nothing of ours;
`config_matches` holds the two equal."""

_REPORT = """
import gc, json, sys
from botocore.client import BaseClient
clients = sorted(o.meta.service_model.service_name for o in gc.get_objects() if isinstance(o, BaseClient))
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "build_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3,
                  "modules": len(sys.modules), "clients": clients}))
"""

BASELINE = f"""
import time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
t1 = time.perf_counter()
config = Config(**{CONFIG_KWARGS!r})
session = boto3.session.Session(region_name={REGION!r})
dynamodb = session.client("dynamodb", region_name={REGION!r}, endpoint_url=None, config=config)
kms = session.client("kms", region_name={REGION!r}, endpoint_url=None, config=config)
t2 = time.perf_counter()
{_REPORT}
"""

HANDLER = f"""
import time
t0 = time.perf_counter()
from agent_auth.handlers import token
t1 = time.perf_counter()
endpoint = token.endpoint()
t2 = time.perf_counter()
{_REPORT}
"""

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "ISSUER": "https://auth.example.com",
    "SIGNING_KEY_ARN": f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-0000-0000-000000000000",
    "SIGNING_ALG": "RS256",
}


def child_env() -> dict[str, str]:
    """The same environment for both kinds: fake credentials (no credential-provider chain lookups),
    the region, and the settings the handler reads. No AWS call is made while building clients."""
    from agent_auth import schema

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(FAKE_ENV)
    for spec in schema.ALL_TABLES:
        env[spec.env_var] = f"agent-auth-bench-{spec.logical_name}"
    return env


def config_matches() -> bool:
    from botocore.config import Config

    from agent_auth.adapters.aws import CLIENT_CONFIG

    expected: dict[str, Any] = Config(**CONFIG_KWARGS)._user_provided_options
    return bool(CLIENT_CONFIG._user_provided_options == expected)


def run_child(script: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run() -> list[TargetResult]:
    log(f"target 3: {PROCESSES} fresh processes each of baseline (boto3 + clients) and handler init")
    env = child_env()
    scripts = {"baseline": BASELINE, "handler": HANDLER}
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "handler": []}
    for script in scripts.values():
        run_child(script, env)  # warm the bytecode caches
    for i in range(PROCESSES):
        order = ["baseline", "handler"] if i % 2 == 0 else ["handler", "baseline"]
        for name in order:
            runs[name].append(run_child(scripts[name], env))

    def med(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[name]))

    baseline_ms, handler_ms = med("baseline", "total_ms"), med("handler", "total_ms")
    ratio = handler_ms / baseline_ms
    handler_clients = sorted({c for r in runs["handler"] for c in r["clients"]})
    clients_built = {"dynamodb", "kms"} <= set(handler_clients)
    same_config = config_matches()
    figure = f"handler init {handler_ms:.0f} ms / boto3 + clients {baseline_ms:.0f} ms = {ratio:.2f}x"
    notes = []
    if not clients_built:
        notes.append(f"the handler built only {handler_clients}: not comparable")
    if not same_config:
        notes.append("CLIENT_CONFIG differs from the baseline's Config: update bench/coldstart.py")
    data = {
        "processes": PROCESSES,
        "baseline_median_ms": round(baseline_ms, 1),
        "baseline_import_median_ms": round(med("baseline", "import_ms"), 1),
        "baseline_clients_median_ms": round(med("baseline", "build_ms"), 1),
        "baseline_modules": runs["baseline"][0]["modules"],
        "handler_median_ms": round(handler_ms, 1),
        "handler_import_median_ms": round(med("handler", "import_ms"), 1),
        "handler_endpoint_median_ms": round(med("handler", "build_ms"), 1),
        "handler_modules": runs["handler"][0]["modules"],
        "handler_clients": handler_clients,
        "config_matches": same_config,
        "added_ms": round(handler_ms - baseline_ms, 1),
    }
    log(f"  {figure}; {data}")
    return [
        TargetResult(
            number=3,
            title="cold start (token handler)",
            figure=figure,
            target=f"<= {BOUND}x",
            passed=ratio <= BOUND and clients_built and same_config,
            ratio=round(ratio, 3),
            note="; ".join(notes),
            data=data,
        )
    ]
