"""Target 6: the SDK verifier checks tokens offline. Tokens issued by the development server over HTTP
are verified in a loop on one thread, against the keys fetched once from its JWKS; every HTTP call the
verifier makes is counted, and must be none after that first fetch.

The rate is verifications per second of this thread's CPU time (one core's work, whatever else the
shared machine runs); the wall-clock rate is reported beside it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jwt

from common import REPO, SECRET_AGENT, BenchEnv, TargetResult, log

try:
    import agent_auth_sdk  # noqa: F401  (installed by `make`: pip install -e sdk)
except ImportError:  # a checkout where the SDK is not installed yet
    sys.path.insert(0, str(REPO / "sdk"))

from agent_auth_sdk import AgentAuth, Verifier
from agent_auth_sdk.transport import Response, UrllibTransport

BOUND = 10_000
TOKENS = 8
VERIFICATIONS = 40_000
AUDIENCE = "https://crm.example.com"
SCOPE = "crm.contacts.read"


class CountingTransport:
    """The verifier's HTTP, counted."""

    def __init__(self) -> None:
        self._inner = UrllibTransport()
        self.calls: list[str] = []

    def get(self, url: str) -> Response:
        self.calls.append(f"GET {url}")
        return self._inner.get(url)

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> Response:
        self.calls.append(f"POST {url}")
        return self._inner.post(url, form, headers)


def run(env: BenchEnv) -> list[TargetResult]:
    log("target 6: verifying tokens offline with the SDK verifier")
    secret = env.dev.credentials[SECRET_AGENT]["client_secret"]
    agent = AgentAuth(env.dev.issuer, SECRET_AGENT, client_secret=secret)
    form = {"grant_type": "client_credentials", "scope": SCOPE, "resource": AUDIENCE}
    tokens = [agent.grant(dict(form)).access_token for _ in range(TOKENS)]  # distinct tokens, not the cache

    http = CountingTransport()
    verifier = Verifier(env.dev.issuer, AUDIENCE, scopes=[SCOPE], http=http)
    verifier.verify(tokens[0])  # the first key fetch (discovery, then the JWKS)
    first_fetch = len(http.calls)

    cpu_start, wall_start = time.thread_time(), time.perf_counter()
    for i in range(VERIFICATIONS):
        verifier.verify(tokens[i % TOKENS])
    cpu, wall = time.thread_time() - cpu_start, time.perf_counter() - wall_start
    after = len(http.calls) - first_fetch

    rate, wall_rate = VERIFICATIONS / cpu, VERIFICATIONS / wall
    data: dict[str, Any] = {
        "verifications": VERIFICATIONS,
        "per_second_cpu": round(rate),
        "per_second_wall": round(wall_rate),
        "microseconds_each": round(1e6 * cpu / VERIFICATIONS, 1),
        "calls_for_first_fetch": first_fetch,
        "calls_after_first_fetch": after,
        "algorithm": jwt.get_unverified_header(tokens[0])["alg"],
    }
    return [
        TargetResult(
            number=6,
            title="Verification (SDK, offline)",
            figure=f"{rate:,.0f}/s on one core ({wall_rate:,.0f}/s wall), {after} calls after the key fetch",
            target=f">= {BOUND:,}/s, 0 calls",
            passed=rate >= BOUND and after == 0,
            ratio=round(rate / BOUND, 2),
            data=data,
        )
    ]
