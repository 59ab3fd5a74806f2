"""Target 2: warm overhead. The token handler's median against the median of its own AWS calls alone.

The raw calls are the very calls one warm request makes (recorded as in target 1), replayed with the
same parameters on the same botocore clients against the same in-process moto: GetItem on the agents
table, kms:Sign (RAW, RSASSA_PKCS1_V1_5_SHA_256, same key, same message size), the audit PutItem and,
for private_key_jwt, the conditional jti PutItem. Written items get a fresh key each time, as the
handler's do. Handler and raw samples are interleaved one by one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from botocore import xform_name

from calls import ApiCall, calls_of_one_request
from common import BenchEnv, TargetResult, interleaved, log, median_ms, percentile_ms, token_handler

BOUND = 1.3
SAMPLES = 300
WARMUP = 30


def _fresh_params(call: ApiCall, serial: int) -> dict[str, Any]:
    """The recorded parameters; a write gets a new key so it adds an item like the handler's write."""
    params = copy.deepcopy(call.params)
    if call.operation == "PutItem":
        item = params["Item"]
        key = "sk" if "sk" in item else "pk"
        item[key] = {"S": f"{item[key]['S']}#raw{serial}"}
    return params


def raw_sampler(calls: list[ApiCall], per_call: dict[str, list[int]]) -> Callable[[], int]:
    """One sample: every recorded call once, in the recorded order, each timed on its own."""
    serial = 0
    methods = [getattr(call.client, xform_name(call.operation)) for call in calls]
    labels = [call.name + (" (jti)" if call.conditional else "") for call in calls]

    def sample() -> int:
        nonlocal serial
        serial += 1
        params = [_fresh_params(call, serial) for call in calls]
        total = 0
        for method, label, kwargs in zip(methods, labels, params, strict=True):
            start = time.perf_counter_ns()
            method(**kwargs)
            elapsed = time.perf_counter_ns() - start
            per_call.setdefault(label, []).append(elapsed)
            total += elapsed
        return total

    return sample


def handler_sampler(make_event: Callable[[], dict[str, Any]]) -> Callable[[], int]:
    handler = token_handler()

    def sample() -> int:
        event = make_event()
        start = time.perf_counter_ns()
        result = handler(event, None)
        elapsed = time.perf_counter_ns() - start
        if result["statusCode"] != 200:
            raise RuntimeError(f"token request failed: {result['statusCode']} {result.get('body')}")
        return elapsed

    return sample


def measure(env: BenchEnv, method: str, make_request: Callable[[], Any]) -> TargetResult:
    record = calls_of_one_request(env, make_request)
    # Requests (and for private_key_jwt their signed assertions) are made before timing starts.
    events = iter([env.event(make_request()) for _ in range(SAMPLES + WARMUP)])
    per_call: dict[str, list[int]] = {}
    samples = interleaved(
        {"handler": handler_sampler(lambda: next(events)), "raw": raw_sampler(record.calls, per_call)},
        samples=SAMPLES,
        warmup=WARMUP,
    )
    handler_ms, raw_ms = median_ms(samples["handler"]), median_ms(samples["raw"])
    ratio = handler_ms / raw_ms
    # per_call also holds the warm-up samples; the medians barely notice, but drop them anyway.
    raw_calls = {label: round(median_ms(times[WARMUP:]), 3) for label, times in per_call.items()}
    return TargetResult(
        number=2,
        title=f"warm overhead ({method})",
        figure=f"handler {handler_ms:.2f} ms / raw {raw_ms:.2f} ms = {ratio:.2f}x",
        target=f"<= {BOUND}x",
        passed=ratio <= BOUND,
        ratio=round(ratio, 3),
        data={
            "auth_method": method,
            "samples": SAMPLES,
            "handler_median_ms": round(handler_ms, 3),
            "handler_p90_ms": round(percentile_ms(samples["handler"], 0.9), 3),
            "raw_median_ms": round(raw_ms, 3),
            "raw_p90_ms": round(percentile_ms(samples["raw"], 0.9), 3),
            "raw_call_medians_ms": raw_calls,
            "overhead_ms": round(handler_ms - raw_ms, 3),
        },
    )


def run(env: BenchEnv) -> list[TargetResult]:
    results = []
    for method, make_request in (
        ("client_secret_basic", env.basic_request),
        ("private_key_jwt", env.jwt_request),
    ):
        log(f"target 2: {SAMPLES} interleaved handler / raw-call samples, {method}")
        result = measure(env, method, make_request)
        log(f"  {result.figure}; raw calls {result.data['raw_call_medians_ms']}")
        results.append(result)
    return results
