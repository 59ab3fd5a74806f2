"""Delegated access end to end: a real Chromium signs in on the development provider and consents, a
real OAuth client (authlib) exchanges the code and refreshes; screenshots of both pages are kept.

Needs Debian's chromium; without it the test skips with the reason, unless AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import httpx2
import pytest

from tests.e2e.conftest import DevServer
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
