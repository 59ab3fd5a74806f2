"""Delegated access end to end: a real Chromium signs in on the development provider and consents, a
real OAuth client (authlib) exchanges the code and refreshes; screenshots of both pages are kept.

Needs Debian's chromium; without it the test skips with the reason, unless AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from tests.e2e.conftest import DevServer, fetch_json
from tests.e2e.sign_in import PUBLIC_AGENT, Callback, delegate


@pytest.mark.browser
def test_a_user_signs_in_consents_and_the_agent_acts_for_them(
    dev_server: DevServer, callback: Callback
) -> None:
    delegated = delegate(
        dev_server,
        callback,
        "openid offline_access crm.contacts.read",
        shots="delegated-",
        resource="https://crm.example.com",
        nonce="n-0S6_WzA2Mj",
    )
    answer, token, metadata = delegated.answer, delegated.token, delegated.metadata
    client, verifier = delegated.client, delegated.verifier
    assert answer["state"] == delegated.state and answer["iss"] == dev_server.issuer  # RFC 9207

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


@pytest.mark.browser
def test_a_user_who_consented_before_signs_in_again_and_goes_straight_back_to_the_agent(
    dev_server: DevServer, callback: Callback
) -> None:
    # Given dana (of group support, so crm-reader) allowed the agent once: her consent is remembered
    user, groups = "dana@example.com", "support"
    first, _ = _authorization_url(dev_server, callback)
    assert "Allow" in _sign_in(first, user, groups, allow=True)
    answered = len(callback.queries)

    # When a new browser (no session) sends her through /authorize again, and she signs in
    again, state = _authorization_url(dev_server, callback)
    _sign_in(again, user, groups, allow=False)

    # Then no consent page: the sign-in form's POST ends, through the callback, at the agent's redirect
    # URI on another origin, which the provider page's form-action allows (CSP Level 3 applies it to
    # the redirects after a form's POST)
    assert len(callback.queries) > answered
    answer = callback.answer()
    assert answer["state"] == state and "code" in answer


def _authorization_url(dev_server: DevServer, callback: Callback) -> tuple[str, str]:
    metadata = fetch_json(f"{dev_server.issuer}/.well-known/oauth-authorization-server")
    client = OAuth2Client(
        client_id=PUBLIC_AGENT,
        token_endpoint_auth_method="none",
        redirect_uri=callback.uri,
        scope="crm.contacts.read",
        code_challenge_method="S256",
    )
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48)
    )
    return str(url), str(state)


def _sign_in(url: str, user: str, groups: str, *, allow: bool) -> str:
    """Sign in on the development provider in a fresh browser; Allow on the consent page if asked.
    Returns the page the sign-in led to."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_approval_browser import CHROMIUM_FLAGS, chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(java_script_enabled=False)
            page.goto(url)
            page.fill("input[name=username]", user)
            page.fill("input[name=groups]", groups)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            content = page.content()
            if allow:
                page.get_by_role("button", name="Allow").click()
                page.wait_for_load_state()
            return content
        finally:
            browser.close()
