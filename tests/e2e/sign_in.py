"""A user signing in on the development provider and consenting, as the end-to-end tests need it: a
real Chromium (JavaScript off, the pages are plain forms), the agent's loopback redirect URI, and an
authlib client that turns the code into tokens."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from tests.e2e.conftest import DevServer, fetch_json
from tests.e2e.test_approval_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium

ALICE = "alice@example.com"
PUBLIC_AGENT = "public-app"


def sign_in_and_allow(url: str, *, user: str = ALICE, expect: Sequence[str] = (), shots: str = "") -> None:
    """Open `url` (an authorization request), sign in as `user`, check the consent page names every
    fact in `expect`, click Allow. `shots`: a file-name prefix for screenshots of both pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760}, java_script_enabled=False)
            page.goto(url)
            page.fill("input[name=username]", user)
            if shots:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"{shots}sign-in-page.png"), full_page=True)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            content = page.content()
            for fact in expect:
                assert fact in content, fact
            if shots:
                page.screenshot(path=str(ARTIFACTS / f"{shots}consent-page.png"), full_page=True)
            page.get_by_role("button", name="Allow").click()
            page.wait_for_load_state()
        finally:
            browser.close()


class Callback:
    """The agent's loopback redirect URI (RFC 8252 §7.3): a real listener that keeps each query."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        callback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                callback.queries.append({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
                body = b"<!doctype html><title>done</title><h1>You can close this window</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self) -> dict[str, str]:
        """The authorization response: the request that carries `code` or `error` (the browser may also
        ask the listener for /favicon.ico, with no query)."""
        answers = [q for q in self.queries if "code" in q or "error" in q]
        assert answers, "the browser never reached the agent's redirect URI"
        return answers[-1]


@dataclass
class Delegated:
    """What an agent holds after a user allowed it: its client, the answer at its redirect URI, tokens."""

    client: OAuth2Client
    metadata: dict[str, Any]
    verifier: str
    state: str
    answer: dict[str, str]
    token: dict[str, Any]


def delegate(
    dev_server: DevServer, callback: Callback, scope: str, *, shots: str = "", **params: str
) -> Delegated:
    """The public agent asks alice for `scope` (with PKCE and any extra authorization `params`), she
    signs in and allows it, and authlib redeems the code."""
    metadata = fetch_json(f"{dev_server.issuer}/.well-known/oauth-authorization-server")
    verifier = generate_token(48)
    client = OAuth2Client(
        client_id=PUBLIC_AGENT,
        token_endpoint_auth_method="none",
        redirect_uri=callback.uri,
        scope=scope,
        code_challenge_method="S256",
    )
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, **params
    )
    expect = (PUBLIC_AGENT, "owner@example.com", ALICE, "127.0.0.1", "Read contacts")
    sign_in_and_allow(url, expect=expect, shots=shots)
    answer = callback.answer()
    token = client.fetch_token(metadata["token_endpoint"], code=answer["code"], code_verifier=verifier)
    return Delegated(client, metadata, verifier, state, answer, token)
