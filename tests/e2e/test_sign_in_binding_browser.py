"""Login CSRF in a real headless Chromium through `agent-auth dev` (RFC 9700 §4.7.1; OpenID Connect
Core §3.1.2.1): a sign-in completes only in the browser that started it.

One browser context (the sender) starts a sign-in and signs in at the development provider; the
provider's answer, a callback URL, is caught instead of followed. Opened in another context (someone the
sender sent it to) it is refused and signs nobody in; the sign-in has ended, so it fails in the
sender's context too. Two sign-ins started in parallel tabs of one context both reach consent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import DevServer, fetch_json
from tests.e2e.sign_in import ALICE, PUBLIC_AGENT, Callback, sign_in_and_allow
from tests.e2e.test_approval_browser import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.browser
BOB = "bob@example.com"
"""In the group `support` (crm-reader), and consents nowhere before these tests."""


def authorization_url(server: DevServer, callback: Callback, state: str) -> str:
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import OAuth2Client

    metadata = fetch_json(f"{server.issuer}/.well-known/oauth-authorization-server")
    client = OAuth2Client(
        client_id=PUBLIC_AGENT,
        token_endpoint_auth_method="none",
        redirect_uri=callback.uri,
        scope="crm.contacts.read",
        code_challenge_method="S256",
    )
    url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48), state=state
    )
    return str(url)


def provider_of(server: DevServer) -> str:
    state = json.loads((server.workdir / ".agent-auth" / "dev.json").read_text())["settings"]
    return str(state["UPSTREAM_ISSUER"])


def caught_callback(context: Any, server: DevServer, url: str) -> str:
    """Sign in as alice in `context`, and return the callback URL the provider answers with, which
    the browser never opens: the provider's form POST is sent by Playwright without following the
    redirect, and the page gets a blank answer instead."""
    caught: list[str] = []

    def catch(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        response = route.fetch(max_redirects=0)
        caught.append(response.headers["location"])
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>caught</title>")

    context.route(f"{provider_of(server)}/authorize", catch)
    page = context.new_page()
    page.goto(url)
    page.fill("input[name=username]", ALICE)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    context.unroute(f"{provider_of(server)}/authorize")
    page.close()
    assert len(caught) == 1 and caught[0].startswith(f"{server.issuer}/authorize/callback?"), caught
    return caught[0]


def session_cookies(context: Any) -> list[str]:
    return [c["name"] for c in context.cookies() if "agent-auth-session" in c["name"]]


def test_a_callback_url_from_one_browser_is_refused_in_another(
    dev_server: DevServer, callback: Callback
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            sender = browser.new_context(java_script_enabled=False)
            url = caught_callback(sender, dev_server, authorization_url(dev_server, callback, "sent-on"))
            assert any(c["name"].startswith("agent-auth-sign-in-") for c in sender.cookies())
            # The victim opens the URL the sender sent: refused, nobody signed in, nothing for the agent.
            victim = browser.new_context(java_script_enabled=False)
            page = victim.new_page()
            page.goto(url)
            assert "Sign-in cannot continue" in page.content() and "not started here" in page.content()
            assert session_cookies(victim) == [] and callback.queries == []
            # The sign-in has ended: the browser that started it cannot finish it now either.
            again = sender.new_page()
            again.goto(url)
            assert "Sign-in cannot continue" in again.content() and session_cookies(sender) == []
        finally:
            browser.close()
    audit = dev_server.cli("audit", "--dev", "--json")
    assert audit.returncode == 0 and audit.stdout.count('"sign_in_not_from_this_browser"') == 1
    # The normal flow, in one browser, still works.
    sign_in_and_allow(authorization_url(dev_server, callback, "one-browser"))
    assert "code" in callback.answer() and callback.answer()["state"] == "one-browser"


def test_sign_ins_started_in_two_tabs_both_reach_consent(dev_server: DevServer, callback: Callback) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(java_script_enabled=False)
            tabs = [context.new_page(), context.new_page()]
            for number, tab in enumerate(tabs):
                tab.goto(authorization_url(dev_server, callback, f"tab-{number}"))
            pending = [c for c in context.cookies() if c["name"].startswith("agent-auth-sign-in-")]
            assert len(pending) == 2 and all(c["httpOnly"] and c["sameSite"] == "Lax" for c in pending)
            for tab in reversed(tabs):  # the tab opened last finishes first
                tab.bring_to_front()
                tab.fill("input[name=username]", BOB)  # no consent remembered: both show the page
                tab.fill("input[name=groups]", "support")
                tab.get_by_role("button", name="Sign in").click()
                tab.wait_for_url("**/authorize/consent?*")
                assert "Allow access?" in tab.content() and BOB in tab.content(), tab.content()
            leftover = [c for c in context.cookies() if c["name"].startswith("agent-auth-sign-in-")]
            assert leftover == [] and len(session_cookies(context)) == 1
        finally:
            browser.close()
