"""The key sets the exchange grant fetches (adapters/jwks_http.py): a trusted issuer's jwks_uri and our
own /jwks.json, over the strict client: no redirect followed, at most 64 KiB, JSON only, a clean
DependencyFailure (503) for anything else."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from agent_auth.adapters.jwks_http import MAX_JWKS_BYTES, HttpsJwksFetcher, PublishedJwks
from agent_auth.errors import DependencyFailure

KEYS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/jwks.json")
                self.end_headers()
                return
            body = b"x" * (MAX_JWKS_BYTES + 1) if self.path == "/huge" else json.dumps(KEYS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path == "/html" else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_our_own_published_keys_are_read_from_the_issuers_jwks(server: str) -> None:
    assert PublishedJwks(server + "/").jwks() == KEYS


@pytest.mark.parametrize("path", ["/redirect", "/huge", "/html"])
def test_a_redirect_an_oversized_or_non_json_answer_is_a_dependency_failure(server: str, path: str) -> None:
    with pytest.raises(DependencyFailure):
        HttpsJwksFetcher().fetch_jwks(server + path)


def test_plain_http_off_loopback_is_never_fetched() -> None:
    with pytest.raises(DependencyFailure):
        HttpsJwksFetcher().fetch_jwks("http://keys.example.com/jwks.json")
