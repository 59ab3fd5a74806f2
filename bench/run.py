"""Measure performance targets 1, 2, 3, 5 and 8 (docs/performance.md) for the token endpoint, 4 for
scale, 6 for the SDK verifier and 9 for the audit trail.

    .venv/bin/python bench/run.py                # progress on stderr, a summary table on stdout
    .venv/bin/python bench/run.py --json         # the same figures as JSON on stdout
    .venv/bin/python bench/run.py --skip-audit   # without target 9, which fills a 100,000-record table

Every figure is a ratio or a difference within one run, so a noisy machine moves both sides alike.
Benchmarks report; tests assert: the exit status is 0 whatever the verdicts (2 only on bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import audit
import calls
import coldstart
import enumeration
import loopback
import overhead
import scale
import verifier
from common import BenchEnv, TargetResult, log, machine


def run_all(with_audit: bool = True) -> list[TargetResult]:
    # Cold start first: its child processes should not compete with the in-process server threads.
    results = coldstart.run()
    log("starting the development environment (moto in process, tables, key, policy, HTTP server)")
    with BenchEnv() as env:
        results = calls.run(env) + overhead.run(env) + results + enumeration.run(env) + loopback.run(env)
        results += verifier.run(env)
        # Last in this environment: it writes 10,000 agents and 1,000 grants into its tables.
        results += scale.run(env)
    if with_audit:
        # Its own moto, after the development environment has stopped: the two never share a backend.
        results += audit.run()
    return sorted(results, key=lambda r: r.number)


def summary(results: list[TargetResult], about: dict[str, Any], seconds: float) -> str:
    title_width = max(len(r.title) for r in results)
    figures = {id(r): f"{r.figure} ({r.target})" + (f", {r.note}" if r.note else "") for r in results}
    figure_width = max(len(figure) for figure in figures.values())
    lines = [
        f"agent-auth token endpoint benchmarks, {about['date']}",
        f"machine: {about['cpu']}, {about['cores']} cores, {about['implementation']} {about['python']}, "
        f"{about['os']}",
        "",
    ]
    for r in results:
        figure = figures[id(r)]
        lines.append(f"  target {r.number}  {r.title:<{title_width}}  {figure:<{figure_width}}  {r.verdict}")
    passed = sum(r.passed for r in results)
    lines += ["", f"{passed} of {len(results)} PASS, in {seconds:.0f} s"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument(
        "--skip-audit", action="store_true", help="leave out target 9 (minutes: it writes 100,000 records)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    about = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **machine()}
    results = run_all(with_audit=not args.skip_audit)
    seconds = time.perf_counter() - started
    if args.json:
        document = {"machine": about, "seconds": round(seconds, 1), "results": [r.to_json() for r in results]}
        print(json.dumps(document, indent=2))
    else:
        print(summary(results, about, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
