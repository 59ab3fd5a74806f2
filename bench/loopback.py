"""Target 5: loopback HTTP. One keep-alive HTTP/1.1 connection to the development server against the
in-process handler, same request, samples interleaved one by one in the same process.

The server-side socket options are read from the connection the server actually accepted (its
`get_request` is wrapped for the one connection the benchmark opens), not from the source.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BenchEnv, TargetResult, interleaved, log, median_ms, percentile_ms
from overhead import handler_sampler

BOUND_MS = 0.5
SAMPLES = 400
WARMUP = 40
NOOP_PATH = "/bench-noop"
"""A route added to the running server only for the benchmark: the HTTP path with no handler work.
Interleaved with the token requests it shows what the transport costs when the server thread has
been idle for a request's time; back to back, what it costs when nothing sleeps."""


def _somaxconn() -> int | None:
    try:
        return int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        return None


def connect(env: BenchEnv) -> tuple[http.client.HTTPConnection, dict[str, Any]]:
    """Open the benchmark's connection and read the options of the socket the server accepted."""
    server = env.dev._server
    assert server is not None
    seen: dict[str, Any] = {}
    accept = server.get_request

    def get_request() -> tuple[socket.socket, Any]:
        conn, address = accept()
        seen["tcp_nodelay"] = bool(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return conn, address

    server.get_request = get_request  # type: ignore[method-assign]
    try:
        connection = http.client.HTTPConnection(env.host, env.port, timeout=10)
        connection.connect()
        _post(connection, env.basic_request())  # the server has accepted by the time it answers
    finally:
        del server.get_request  # back to the class's method
    seen["client_tcp_nodelay"] = bool(connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    seen["listen_backlog"] = server.request_queue_size
    seen["somaxconn"] = _somaxconn()
    return connection, seen


def _noop_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def _post(
    connection: http.client.HTTPConnection,
    request: tuple[list[tuple[str, str]], bytes],
    path: str = "/token",
) -> bytes:
    headers, body = request
    connection.request("POST", path, body=body, headers=dict(headers))
    response = connection.getresponse()
    data = response.read()
    if response.status != 200 or response.will_close:
        raise RuntimeError(f"token request over HTTP failed: {response.status} {data!r}")
    return data


def http_sampler(
    connection: http.client.HTTPConnection,
    make_request: Callable[[], tuple[list[tuple[str, str]], bytes]],
    path: str = "/token",
) -> Callable[[], int]:
    def sample() -> int:
        request = make_request()
        start = time.perf_counter_ns()
        _post(connection, request, path)
        return time.perf_counter_ns() - start

    return sample


def run(env: BenchEnv) -> list[TargetResult]:
    log(f"target 5: {SAMPLES} interleaved samples, one keep-alive HTTP connection vs in process")
    connection, sockets = connect(env)
    connects = 0
    original_connect = connection.connect

    def counting_connect() -> None:
        nonlocal connects
        connects += 1
        original_connect()

    connection.connect = counting_connect  # type: ignore[method-assign]
    server = env.dev._server
    assert server is not None
    server.routes[NOOP_PATH] = _noop_handler
    try:
        samples = interleaved(
            {
                "http": http_sampler(connection, env.basic_request),
                "in_process": handler_sampler(lambda: env.event(env.basic_request())),
                "http_noop": http_sampler(connection, env.basic_request, NOOP_PATH),
            },
            samples=SAMPLES,
            warmup=WARMUP,
        )
        # The same no-op request back to back, the server thread never idle: the transport's floor.
        noop = http_sampler(connection, env.basic_request, NOOP_PATH)
        back_to_back = interleaved({"noop": noop}, samples=SAMPLES, warmup=WARMUP)["noop"]
    finally:
        connection.close()
        del server.routes[NOOP_PATH]
    http_ms, in_process_ms = median_ms(samples["http"]), median_ms(samples["in_process"])
    added = http_ms - in_process_ms
    # Samples are taken in pairs, so the median of the pairwise differences is a second, steadier view.
    paired = [h - i for h, i in zip(samples["http"], samples["in_process"], strict=True)]
    figure = f"HTTP {http_ms:.2f} ms - in-process {in_process_ms:.2f} ms = {added:+.2f} ms"
    note = f"TCP_NODELAY {'on' if sockets.get('tcp_nodelay') else 'OFF'}, backlog {sockets['listen_backlog']}"
    if connects:
        note += f", reconnected {connects}x (keep-alive broken)"
    data = {
        "samples": SAMPLES,
        "http_median_ms": round(http_ms, 3),
        "http_p90_ms": round(percentile_ms(samples["http"], 0.9), 3),
        "in_process_median_ms": round(in_process_ms, 3),
        "in_process_p90_ms": round(percentile_ms(samples["in_process"], 0.9), 3),
        "added_ms": round(added, 3),
        "added_paired_median_ms": round(median_ms(paired), 3),
        "noop_route_http_median_ms": round(median_ms(samples["http_noop"]), 3),
        "noop_route_back_to_back_median_ms": round(median_ms(back_to_back), 3),
        "reconnects": connects,
        **sockets,
    }
    log(f"  {figure}; {data}")
    return [
        TargetResult(
            number=5,
            title="loopback HTTP (client_secret_basic)",
            figure=figure,
            target=f"<= +{BOUND_MS} ms",
            note=note,
            passed=added <= BOUND_MS and bool(sockets.get("tcp_nodelay")) and connects == 0,
            ratio=round(http_ms / in_process_ms, 3),
            data=data,
        )
    ]
