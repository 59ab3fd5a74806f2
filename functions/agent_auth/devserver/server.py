"""A threaded loopback HTTP server that turns requests into API Gateway events for the handlers.

TCP_NODELAY is set on every connection (without it, small responses wait ~40 ms for Nagle's
algorithm), connections are kept alive (HTTP/1.1), and the listen backlog holds many connections.

As API Gateway does, the HTTP layer passes every method to the function (which answers 405 with the
methods it allows) instead of http.server's 501, and refuses only what it cannot frame: a chunked body
(411), a body over 1 MiB (413), a malformed or repeated Content-Length (400), a request line or headers
too long (414, 431), a body that stalls (408). Each refusal is JSON with `Cache-Control: no-store` and
closes the connection: the rest of that request cannot be told from the next one.
"""

from __future__ import annotations

import importlib
import json
import re
import socket
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent_auth import routes
from agent_auth.devserver.events import rest_proxy_event

MAX_REQUEST_BYTES = 1024 * 1024
MAX_LINE = 65536
IDLE_SECONDS = 30
"""How long a connection may wait for its next request (keep-alive) before the server closes it."""
READ_SECONDS = 5
"""How long each read may take once a request has begun: a client that sends less than its
Content-Length gets 408 instead of holding a thread forever."""
METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""RFC 9110 §9.1: a method is a token, case-sensitive (so `post` is a method, just not POST)."""
CONTENT_LENGTH = re.compile(r"[0-9]{1,16}")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
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
    timeout = IDLE_SECONDS
    server: DevServer

    def handle_one_request(self) -> None:
        """BaseHTTPRequestHandler's, with two timeouts and one dispatch: every method goes to _serve."""
        try:
            self.connection.settimeout(IDLE_SECONDS)
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.connection.settimeout(READ_SECONDS)
            if len(self.raw_requestline) > MAX_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            try:
                parsed = self.parse_request()
            except TimeoutError:
                self.send_error(HTTPStatus.REQUEST_TIMEOUT)  # the headers stalled
                return
            if not parsed:
                return  # parse_request has sent the error (send_error below)
            if not METHOD.fullmatch(self.command):
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            self._serve()
            self.wfile.flush()
        except TimeoutError:
            # Idle between requests, or a client that does not read its response: close quietly.
            self.close_connection = True

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._read_body()
        if body is None:
            return
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
        try:
            result = handler(event, None)
        except Exception as exc:
            # As API Gateway answers a function that failed: 502. The handlers' resolver catches
            # everything, so this is a bug in a development route; its type goes to the terminal.
            print(f"agent-auth dev: {resource} failed: {type(exc).__name__}", file=sys.stderr)
            self._reply(502, {"message": "Internal server error"}, close=True)
            return
        payload = result.get("body") or ""
        data = payload.encode("utf-8")
        self.send_response(int(result["statusCode"]))
        multi = result.get("multiValueHeaders") or {}
        for name, value in (result.get("headers") or {}).items():
            if name not in multi:  # as API Gateway merges them: a value in both is sent once
                self.send_header(name, value)
        for name, values in multi.items():
            for value in values:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> bytes | None:
        """The request body as Content-Length frames it; None when it was refused (and answered)."""
        if self.headers.get("Transfer-Encoding"):
            self.send_error(HTTPStatus.LENGTH_REQUIRED)
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or (lengths and not CONTENT_LENGTH.fullmatch(lengths[0].strip())):
            self.send_error(HTTPStatus.BAD_REQUEST)
            return None
        length = int(lengths[0]) if lengths else 0
        if length > MAX_REQUEST_BYTES:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT)
            return None
        if len(body) < length:
            self.send_error(HTTPStatus.BAD_REQUEST)  # the client closed its side before the end
            return None
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (and ours), as JSON with no-store; the connection then closes.
        The description is the status's fixed phrase: http.server's message may quote the request."""
        phrase = HTTPStatus(code).phrase
        self._reply(code, {"error": "invalid_request", "error_description": phrase}, close=True)

    def _reply(self, status: int, payload: dict[str, str], close: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in NO_STORE.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would print query strings, and the audit trail already records decisions."""
