"""`agent-auth consents --dev` end to end: a real Chromium signs alice in and she consents; the real
CLI lists what she allowed, withdraws it (audited), and her refresh token stops working.

Needs Debian's chromium; without it the test skips with the reason, unless AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.sign_in import ALICE, PUBLIC_AGENT, Callback, delegate


@pytest.mark.browser
def test_an_operator_lists_and_revokes_a_consent_and_its_refresh_token_stops_working(
    dev_server: DevServer, callback: Callback
) -> None:
    # Given alice consented to public-app (remembered) and it holds a refresh token
    delegated = delegate(
        dev_server, callback, "offline_access crm.contacts.read", resource="https://crm.example.com"
    )
    metadata, token = delegated.metadata, delegated.token
    assert token["refresh_token"]

    # When the operator lists alice's consents
    listed = dev_server.cli("consents", "--dev", "--user", ALICE, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["user"], r["client_id"], r["status"]) for r in rows] == [(ALICE, PUBLIC_AGENT, "active")]
    assert "crm.contacts.read" in rows[0]["scopes"]

    # And withdraws the one for public-app
    revoked = dev_server.cli("consents", "revoke", "--dev", "--user", ALICE, "--agent", PUBLIC_AGENT)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["client_id"] == PUBLIC_AGENT

    # Then the revocation is audited, naming the operator and the user
    audit = dev_server.cli("audit", "--dev", "--json", "--since", "1h", "--user", ALICE)
    assert audit.returncode == 0, audit.stderr
    records = [json.loads(line) for line in audit.stdout.splitlines()]
    [record] = [r for r in records if r["action"] == "consent.revoke"]
    assert record["operator"].endswith("@dev") and record["user"] == ALICE
    assert record["client_id"] == PUBLIC_AGENT

    # And the refresh token is refused, and revoking again is a clear error
    refused = httpx2.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": PUBLIC_AGENT,
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    again = dev_server.cli("consents", "revoke", "--dev", "--user", ALICE, "--agent", PUBLIC_AGENT)
    assert again.returncode == 1 and "no active consent" in again.stderr
    assert "Traceback" not in again.stderr
