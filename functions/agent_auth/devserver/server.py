"""A threaded loopback HTTP server that turns requests into API Gateway events for the handlers.

TCP_NODELAY is set on every connection (without it, small responses wait ~40 ms for Nagle's
algorithm), connections are kept alive (HTTP/1.1), and the listen backlog holds many connections.
"""

from __future__ import annotations

import importlib
import json
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent_auth import routes
from agent_auth.devserver.events import rest_proxy_event

MAX_REQUEST_BYTES = 1024 * 1024
Handler = Callable[[dict[str, Any], object], dict[str, Any]]


def load_handler(function: routes.FunctionSpec) -> Handler:
    module_name, _, attribute = function.handler.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def route_table() -> dict[str, Handler]:
    """Resource path -> lambda_handler, from the same route definitions the CDK API uses."""
    return {path: load_handler(function) for function in routes.FUNCTIONS for path in function.paths}


class DevServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, host: str, port: int, extra_routes: dict[str, Handler] | None = None) -> None:
        self.routes = {**route_table(), **(extra_routes or {})}
        self._patterns = [(routes.path_pattern(p), p) for p in self.routes if "{" in p]
        super().__init__((host, port), _RequestHandler)

    def resource_for(self, path: str) -> str | None:
        """The API Gateway resource a path falls under, as API Gateway would match it."""
        if path in self.routes:
            return path
        return next((resource for pattern, resource in self._patterns if pattern.match(path)), None)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: the status line, headers and body leave in one send when the request is done
    # (BaseHTTPRequestHandler flushes wfile after each request), instead of two small packets.
    wbufsize = -1
    server: DevServer

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            self._reply(
                411, {"error": "invalid_request", "error_description": "Send Content-Length"}, close=True
            )
            return
        try:
            length = int(length_header or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES:
            self._reply(
                413, {"error": "invalid_request", "error_description": "Request too large"}, close=True
            )
            return
        body = self.rfile.read(length) if length else b""
        resource = self.server.resource_for(path)
        handler = self.server.routes.get(resource) if resource else None
        if handler is None or resource is None:
            self._reply(404, {"error": "not_found", "error_description": "Not found"})
            return
        event = rest_proxy_event(
            method=self.command,
            path=path,
            resource=resource,
            query=query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            host=self.headers.get("Host", ""),
        )
        result = handler(event, None)
        payload = result.get("body") or ""
        data = payload.encode("utf-8")
        self.send_response(int(result["statusCode"]))
        for name, value in (result.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reply(self, status: int, payload: dict[str, str], close: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would print query strings, and the audit trail already records decisions."""
