"""Delegated access end to end: a real Chromium signs in on the development provider and consents, a
real OAuth client (authlib) exchanges the code and refreshes; screenshots of both pages are kept.

Needs Debian's chromium; without it the test skips with the reason, unless AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from tests.e2e.conftest import DevServer, fetch_json
from tests.e2e.test_approval_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium

PUBLIC_AGENT = "public-app"


class Callback:
    """The agent's loopback redirect URI (RFC 8252 §7.3): a real listener that keeps the query."""

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


@pytest.fixture
def callback() -> Iterator[Callback]:
    listener = Callback()
    yield listener
    listener.server.shutdown()


def sign_in_and_consent(
    dev_server: DevServer, url: str, callback: Callback, shots: str = ""
) -> dict[str, str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760}, java_script_enabled=False)
            page.goto(url)
            page.fill("input[name=username]", "alice@example.com")
            if shots:
                page.screenshot(path=str(ARTIFACTS / f"{shots}sign-in-page.png"), full_page=True)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            content = page.content()
            for fact in (
                PUBLIC_AGENT,
                "owner@example.com",
                "alice@example.com",
                "127.0.0.1",
                "Read contacts",
            ):
                assert fact in content, fact
            if shots:
                page.screenshot(path=str(ARTIFACTS / f"{shots}consent-page.png"), full_page=True)
            page.get_by_role("button", name="Allow").click()
            page.wait_for_load_state()
        finally:
            browser.close()
    # The browser may also ask the listener for /favicon.ico (no query): the authorization response is
    # the request that carries `code` or `error`.
    answers = [q for q in callback.queries if "code" in q or "error" in q]
    assert answers, "the browser never reached the agent's redirect URI"
    return answers[-1]


@pytest.mark.browser
def test_a_user_signs_in_consents_and_the_agent_acts_for_them(
    dev_server: DevServer, callback: Callback
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    metadata = fetch_json(f"{dev_server.issuer}/.well-known/oauth-authorization-server")
    verifier = generate_token(48)
    client = OAuth2Client(
        client_id=PUBLIC_AGENT,
        token_endpoint_auth_method="none",
        redirect_uri=callback.uri,
        scope="openid offline_access crm.contacts.read",
        code_challenge_method="S256",
    )
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"],
        code_verifier=verifier,
        resource="https://crm.example.com",
        nonce="n-0S6_WzA2Mj",
    )
    answer = sign_in_and_consent(dev_server, url, callback, shots="delegated-")
    assert answer["state"] == state and answer["iss"] == dev_server.issuer  # RFC 9207

    token = client.fetch_token(metadata["token_endpoint"], code=answer["code"], code_verifier=verifier)
    assert token["scope"] == "openid offline_access crm.contacts.read" and token["id_token"]
    claims = _claims(token["access_token"])
    assert claims["sub"] == "alice@example.com" and claims["client_id"] == PUBLIC_AGENT
    assert claims["aud"] == "https://crm.example.com"
    assert _claims(token["id_token"])["nonce"] == "n-0S6_WzA2Mj"

    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert _claims(refreshed["access_token"])["sub"] == "alice@example.com"
    # The retired refresh token, presented again, is refused and ends the family.
    reused = httpx2.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": PUBLIC_AGENT,
        },
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    again = httpx2.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed["refresh_token"],
            "client_id": PUBLIC_AGENT,
        },
    )
    assert again.status_code == 400

    # A code is single use: presenting it again fails.
    second = httpx2.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": callback.uri,
            "code_verifier": verifier,
            "client_id": PUBLIC_AGENT,
        },
    )
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"

    audit = dev_server.cli("audit", "--dev", "--user", "alice@example.com", "--json")
    assert audit.returncode == 0 and '"authorize.consent"' in audit.stdout


def _claims(jwt: str) -> dict[str, object]:
    import base64
    import json

    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]
