"""The development server's HTTP layer against clients that misbehave, over raw sockets: every method
reaches the function (which answers 405 itself), a stalled body cannot hold a thread, and the server's
own refusals are JSON with `Cache-Control: no-store`, like every other response."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.e2e.conftest import DevServer

READ_SECONDS = 5  # agent_auth.devserver.server.READ_SECONDS: what a client waits for a stalled body


def connect(server: DevServer) -> socket.socket:
    address = urlsplit(server.issuer)
    sock = socket.create_connection((address.hostname, address.port), timeout=READ_SECONDS + 15)
    return sock


def exchange(server: DevServer, raw: bytes) -> tuple[http.client.HTTPResponse, bytes, bool]:
    """Send raw bytes; the response, its body, and whether the server then closed the connection."""
    with connect(server) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=raw.split(b" ", 1)[0].decode("latin-1"))
        response.begin()
        body = response.read()
        return response, body, closed(sock)


def closed(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_every_method_reaches_the_function(dev_server: DevServer, method: str) -> None:
    # When a method http.server has no do_ method for is sent to the token endpoint
    response, body, _ = exchange(dev_server, request(method, "/token", "Content-Length: 0"))

    # Then the function refuses it (405 naming POST), not the HTTP layer (501)
    assert response.status == 405, body
    assert "POST" in (response.getheader("Allow") or "")
    assert json.loads(body)["error"] == "invalid_request"
    assert response.getheader("Cache-Control") == "no-store"


def test_a_lowercase_method_is_the_functions_to_judge(dev_server: DevServer) -> None:
    """`post` is not POST to http.server (no do_post: 501); the function gets it and decides."""
    lower, lower_body, _ = exchange(dev_server, request("post", "/token", "Content-Length: 0"))
    upper, upper_body, _ = exchange(dev_server, request("POST", "/token", "Content-Length: 0"))
    assert lower.status != 501
    assert (lower.status, json.loads(lower_body)) == (upper.status, json.loads(upper_body))
    assert lower.getheader("Cache-Control") == "no-store"


def test_a_body_shorter_than_its_content_length_cannot_hold_a_thread(dev_server: DevServer) -> None:
    with connect(dev_server) as stalled:
        # Given a client that promises 100 bytes and sends 11
        start = time.monotonic()
        stalled.sendall(
            request(
                "POST",
                "/token",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 100",
                body=b"grant_type=",
            )
        )

        # Then the server keeps answering everyone else meanwhile
        metadata = httpx2.get(f"{dev_server.issuer}/.well-known/oauth-authorization-server")
        assert metadata.status_code == 200

        # And the stalled request gets 408 after the read timeout, and its connection is closed
        response = http.client.HTTPResponse(stalled, method="POST")
        response.begin()
        body = response.read()
        waited = time.monotonic() - start
        assert response.status == 408, body
        assert READ_SECONDS - 1 <= waited <= READ_SECONDS + 10
        assert response.getheader("Cache-Control") == "no-store"
        assert closed(stalled)


def test_a_body_cut_short_by_the_client_is_refused_at_once(dev_server: DevServer) -> None:
    with connect(dev_server) as sock:
        # Given a client that promises 100 bytes, sends a form that would parse, and stops sending
        form = b"grant_type=client_credentials"
        headers = ("Content-Type: application/x-www-form-urlencoded", "Content-Length: 100")
        sock.sendall(request("POST", "/token", *headers, body=form))
        sock.shutdown(socket.SHUT_WR)

        # Then the truncated body never reaches the function (which would answer 401 invalid_client)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status == 400 and response.read()
        assert response.getheader("Cache-Control") == "no-store"


TOO_MANY_HEADERS = [f"X-Filler-{n}: x" for n in range(120)]

REFUSED = {
    "chunked body": (request("POST", "/token", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 411),
    "body too large": (request("POST", "/token", "Content-Length: 2000000"), 413),
    "content length not a number": (request("POST", "/token", "Content-Length: 1_0"), 400),
    "two content lengths": (request("POST", "/token", "Content-Length: 1", "Content-Length: 2"), 400),
    "header line too long": (request("GET", "/jwks.json", "X-Long: " + "a" * 70000), 431),
    "too many headers": (request("GET", "/jwks.json", *TOO_MANY_HEADERS), 431),
    "request line too long": (request("GET", "/" + "a" * 70000), 414),
    "method not a token": (request("GE(T", "/jwks.json"), 400),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_the_servers_own_refusals_are_json_and_no_store(dev_server: DevServer, name: str) -> None:
    raw, status = REFUSED[name]
    response, body, was_closed = exchange(dev_server, raw)
    assert response.status == status, body
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body)["error"] == "invalid_request"
    assert was_closed, "after refusing to read a request the server must not read the next one from it"


def test_a_kept_alive_connection_serves_many_requests(dev_server: DevServer) -> None:
    """The timeouts close stalled requests, not a healthy keep-alive connection."""
    with connect(dev_server) as sock:
        for _ in range(3):
            sock.sendall(request("GET", "/jwks.json"))
            response = http.client.HTTPResponse(sock, method="GET")
            response.begin()
            response.read()
            assert response.status == 200 and not response.will_close
            time.sleep(0.5)


def test_a_route_that_fails_gets_502_as_from_api_gateway() -> None:
    """A function that raises (a bug in a development route: the handlers' resolver catches
    everything) is answered as API Gateway answers a failed function, not with a dropped connection."""
    from agent_auth.devserver.server import DevServer as HttpServer

    def broken(event: dict[str, object], context: object) -> dict[str, object]:
        raise RuntimeError("a bug")

    server = HttpServer("127.0.0.1", 0, extra_routes={"/_dev/broken": broken})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        response = httpx2.get(f"{server.base_url}/_dev/broken")
        assert response.status_code == 502
        assert response.json() == {"message": "Internal server error"}
        assert response.headers["cache-control"] == "no-store"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
