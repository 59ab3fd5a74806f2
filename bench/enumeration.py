"""Target 8: equal cost for unknown and known clients. The median refusal of a client that does not exist
over that of a known client with a wrong secret, in process against the same moto.

Both requests have the same shape (client_secret_basic, a name of the same length, a secret of a real
one's length) and are interleaved one by one. The failure limits are raised for the run, so every sample
is the plain 401 each failure below the limits gets (past them both answer 429 after the same calls:
tests/unit/test_client_auth_throttle.py), then restored.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from common import (
    FORM_CONTENT_TYPE,
    SECRET_AGENT,
    TOKEN_BODY,
    BenchEnv,
    TargetResult,
    interleaved,
    log,
    median_ms,
    percentile_ms,
    token_handler,
)

LOW, HIGH = 0.9, 1.1
SAMPLES = 200
WARMUP = 20
UNKNOWN_AGENT = "unknown-bot"
"""As long as the example's support-bot, and in no policy."""
WRONG_SECRET = "w" * 43
"""As long as a generated secret (32 bytes, base64url)."""
_LIMITS = ("AUTH_FAILURES_PER_AGENT", "AUTH_FAILURES_PER_SOURCE")


@contextmanager
def limits_out_of_reach() -> Iterator[None]:
    """Raise the failure limits for the handlers built inside the block; restore them after."""
    from agent_auth.web.function import Container

    saved = {name: os.environ.get(name) for name in _LIMITS}
    os.environ.update(dict.fromkeys(_LIMITS, str(10**9)))
    Container.reset_all()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        Container.reset_all()


def refused_sampler(event: dict[str, Any]) -> Callable[[], int]:
    handler = token_handler()

    def sample() -> int:
        start = time.perf_counter_ns()
        result = handler(event, None)
        elapsed = time.perf_counter_ns() - start
        if result["statusCode"] != 401:
            raise RuntimeError(f"expected a 401, got {result['statusCode']} {result.get('body')}")
        return elapsed

    return sample


def basic_event(env: BenchEnv, client_id: str) -> dict[str, Any]:
    authorization = "Basic " + base64.b64encode(f"{client_id}:{WRONG_SECRET}".encode()).decode()
    return env.event(([("Authorization", authorization), ("Content-Type", FORM_CONTENT_TYPE)], TOKEN_BODY))


def run(env: BenchEnv) -> list[TargetResult]:
    log(f"target 8: {SAMPLES} interleaved refusals each, unknown client / known client with a wrong secret")
    with limits_out_of_reach():
        samples = interleaved(
            {
                "known": refused_sampler(basic_event(env, SECRET_AGENT)),
                "unknown": refused_sampler(basic_event(env, UNKNOWN_AGENT)),
            },
            samples=SAMPLES,
            warmup=WARMUP,
        )
    known_ms, unknown_ms = median_ms(samples["known"]), median_ms(samples["unknown"])
    ratio = unknown_ms / known_ms
    result = TargetResult(
        number=8,
        title="unknown / known client refused",
        figure=f"unknown {unknown_ms:.2f} ms / known {known_ms:.2f} ms = {ratio:.2f}x",
        target=f"{LOW}x to {HIGH}x",
        passed=LOW <= ratio <= HIGH,
        ratio=round(ratio, 3),
        data={
            "samples": SAMPLES,
            "known_median_ms": round(known_ms, 3),
            "known_p90_ms": round(percentile_ms(samples["known"], 0.9), 3),
            "unknown_median_ms": round(unknown_ms, 3),
            "unknown_p90_ms": round(percentile_ms(samples["unknown"], 0.9), 3),
        },
    )
    log(f"  {result.figure}")
    return [result]
