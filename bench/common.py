"""Shared pieces of the benchmarks: the result type, statistics, the machine, and the bench environment.

`BenchEnv` starts the development environment (`DevEnvironment`: moto in process, the tables and the
KMS key, the policy applied, the HTTP server on a free port) with the example policy plus one
private_key_jwt agent whose key pair is generated here, and builds token requests for both agents.
"""

from __future__ import annotations

import base64
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = REPO / "examples" / "policy.yaml"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
TOKEN_BODY = b"grant_type=client_credentials"

SECRET_AGENT = "support-bot"
"""The example policy's client_secret_basic agent."""
JWT_AGENT = "bench-jwt-agent"
"""Added by the bench: authenticates with private_key_jwt and a registered public JWK."""
JWT_KID = "bench-key-1"


def log(message: str) -> None:
    """Progress goes to stderr, so `--json` keeps stdout clean."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class TargetResult:
    number: int
    title: str
    figure: str
    """One line for the summary table, e.g. `handler 4.1 ms / raw 3.6 ms = 1.14x`."""
    target: str
    """The bound, e.g. `<= 1.3x`."""
    passed: bool
    ratio: float | None = None
    note: str = ""
    """Printed after the bound: context, or what makes the figure incomparable."""
    data: dict[str, Any] = field(default_factory=dict)
    """Every figure, for --json."""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.number,
            "title": self.title,
            "figure": self.figure,
            "note": self.note,
            "bound": self.target,
            "ratio": self.ratio,
            "pass": self.passed,
            **self.data,
        }


def median_ms(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1e6


def percentile_ms(samples_ns: list[int], fraction: float) -> float:
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def timed_ns(call: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - start


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
    }


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class BenchEnv:
    """The development environment with both agents, and ready-made token requests."""

    def __init__(self) -> None:
        from agent_auth.devserver.runner import DevEnvironment

        self._tmp = tempfile.TemporaryDirectory(prefix="agent-auth-bench-")
        tmp = Path(self._tmp.name)
        self.jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.jwt_key.public_key().public_numbers()
        public_jwk = {
            "kty": "RSA",
            "kid": JWT_KID,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }
        policy = yaml.safe_load(EXAMPLE_POLICY.read_text())
        policy["agents"][JWT_AGENT] = {
            "owner": "bench@example.com",
            "auth": "private_key_jwt",
            "roles": ["crm-reader"],
            "jwks": {"keys": [public_jwk]},
        }
        policy_file = tmp / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(policy, sort_keys=False))
        self.dev = DevEnvironment(port=0, policy_file=str(policy_file), state_dir=tmp)

    def start(self) -> None:
        self.dev.start()
        assert self.dev.settings is not None
        self.settings = self.dev.settings
        secret = self.dev.credentials[SECRET_AGENT]["client_secret"]
        self.basic_authorization = "Basic " + base64.b64encode(f"{SECRET_AGENT}:{secret}".encode()).decode()
        host, port = self.dev.issuer.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)

    def stop(self) -> None:
        self.dev.stop()
        self._tmp.cleanup()

    def __enter__(self) -> BenchEnv:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Requests: headers and body exactly as a client sends them over HTTP.

    def basic_request(self) -> tuple[list[tuple[str, str]], bytes]:
        return [("Authorization", self.basic_authorization), ("Content-Type", FORM_CONTENT_TYPE)], TOKEN_BODY

    def jwt_request(self) -> tuple[list[tuple[str, str]], bytes]:
        """A fresh assertion (new jti) each time: a replayed one is refused."""
        import jwt

        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": JWT_AGENT,
                "sub": JWT_AGENT,
                "aud": f"{self.dev.issuer}/token",
                "iat": now,
                "exp": now + 60,
                "jti": uuid.uuid4().hex,
            },
            self.jwt_key,
            algorithm="RS256",
            headers={"kid": JWT_KID},
        )
        body = (
            TOKEN_BODY
            + b"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
            + b"&client_assertion="
            + assertion.encode("ascii")
        )
        return [("Content-Type", FORM_CONTENT_TYPE)], body

    def event(self, request: tuple[list[tuple[str, str]], bytes]) -> dict[str, Any]:
        """The API Gateway event the dev server would build for this request."""
        from agent_auth.devserver.events import rest_proxy_event

        headers, body = request
        host = f"{self.host}:{self.port}"
        full_headers = [("Host", host), ("Accept-Encoding", "identity"), *headers]
        full_headers.append(("Content-Length", str(len(body))))
        return rest_proxy_event(method="POST", path="/token", headers=full_headers, body=body, host=host)


def token_handler() -> Callable[[dict[str, Any], object], dict[str, Any]]:
    from agent_auth.handlers.token import lambda_handler

    return lambda_handler


def call_handler(event: dict[str, Any]) -> dict[str, Any]:
    """One in-process token request; anything but a 200 is a broken benchmark, not a slow one."""
    result = token_handler()(event, None)
    if result["statusCode"] != 200:
        raise RuntimeError(f"token request failed: {result['statusCode']} {result.get('body')}")
    return result


Sampler = Callable[[], int]
"""Does one measured operation and returns its duration in nanoseconds (preparation is not timed)."""


def interleaved(samplers: dict[str, Sampler], samples: int, warmup: int) -> dict[str, list[int]]:
    """Alternate the samplers one sample at a time, reversing the order every round, so drift and
    noise on a shared machine fall on all of them alike. Warm-up samples are dropped."""
    results: dict[str, list[int]] = {name: [] for name in samplers}
    names = list(samplers)
    for round_number in range(warmup + samples):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            duration = samplers[name]()
            if round_number >= warmup:
                results[name].append(duration)
    return results
