"""Just-in-time access end to end through `agent-auth dev`: real HTTP, the development mailbox, the page."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2

from tests.e2e.conftest import DevServer

POLL_GRANT = "urn:agent-auth:grant-type:access-request"


def _secret(server: DevServer, agent: str) -> tuple[str, str]:
    return agent, server.credentials[agent]["client_secret"]


def mail_for(server: DevServer, request_id: str, to: str = "lead@example.com") -> dict[str, str]:
    mails = httpx2.get(f"{server.issuer}/_dev/mailbox").json()
    for _ in range(50):  # the stream is played every 50 ms
        found = [m for m in mails if m["to"] == to and request_id in m["text"]]
        if found:
            return found[0]
        import time

        time.sleep(0.1)
        mails = httpx2.get(f"{server.issuer}/_dev/mailbox").json()
    raise AssertionError(f"no email to {to} for {request_id}")


def link_in(mail: dict[str, str]) -> str:
    match = re.search(r"(http://\S+/approvals/\S+)", mail["text"])
    assert match
    return match.group(1)


def poll(server: DevServer, request_id: str) -> httpx2.Response:
    return httpx2.post(
        f"{server.issuer}/token",
        auth=_secret(server, "support-bot"),
        data={"grant_type": POLL_GRANT, "request_id": request_id},
    )


def advance(server: DevServer, seconds: int) -> None:
    assert httpx2.post(f"{server.issuer}/_dev/clock", json={"advance": seconds}).status_code == 200


def test_ask_mail_open_approve_poll_and_expire(dev_server: DevServer) -> None:
    # Given the support bot asks for write access for 10 minutes
    asked = httpx2.post(
        f"{dev_server.issuer}/access-requests",
        auth=_secret(dev_server, "support-bot"),
        data={"scope": "crm.contacts.write", "reason": "Merge duplicates (ticket 4821)", "duration": "600"},
    )
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["request_id"]
    metadata = httpx2.get(f"{dev_server.issuer}/.well-known/oauth-authorization-server").json()
    assert metadata["access_request_endpoint"] == f"{dev_server.issuer}/access-requests"

    # Then the email arrives in the development mailbox with the approver's link
    mail = mail_for(dev_server, request_id)
    assert set(mail) == {"to", "subject", "text", "html", "sent_at"}
    link = link_in(mail)

    # When the link page is fetched / Then it shows the request and nothing changes
    with httpx2.Client() as browser:
        page = browser.get(link)
        assert page.status_code == 200 and "Merge duplicates (ticket 4821)" in page.text
        assert poll(dev_server, request_id).json()["error"] == "authorization_pending"
        listed = dev_server.cli("requests", "--dev", "--json")
        [row] = [json.loads(line) for line in listed.stdout.splitlines() if request_id in line]
        assert row["status"] == "pending"

        # When Approve is posted from the page (its fields, its CSRF cookie)
        fields: dict[str, Any] = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        )
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        decided = browser.post(link, data={**fields, "decision": "approve"})
        assert decided.status_code == 200 and "<h1>Approved</h1>" in decided.text

    # Then the agent's poll returns a token with the elevated scope, within the grant
    advance(dev_server, 5)
    granted = poll(dev_server, request_id)
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == "crm.contacts.write" and granted.json()["expires_in"] <= 600
    table = dev_server.cli("requests", "--dev")
    assert re.search(
        rf"{request_id}\s+support-bot\s+crm.contacts.write\s+10m\s+approved\s+lead@example.com", table.stdout
    ), table.stdout

    # And after the grant's end (the development clock moved on), the scope is refused
    advance(dev_server, 601)
    later = httpx2.post(
        f"{dev_server.issuer}/token",
        auth=_secret(dev_server, "support-bot"),
        data={"grant_type": "client_credentials", "scope": "crm.contacts.write"},
    )
    assert later.status_code == 400 and later.json()["error"] == "invalid_scope"


def test_operator_revokes_a_grant(dev_server: DevServer) -> None:
    client_id, secret = _secret(dev_server, "billing-agent")  # client_secret_post
    credentials = {"client_id": client_id, "client_secret": secret}
    asked = httpx2.post(
        f"{dev_server.issuer}/access-requests",
        data={**credentials, "scope": "crm.contacts.write", "reason": "Nightly import"},
    )
    assert asked.status_code == 200 and asked.json()["status"] == "approved"  # an auto rule
    revoked = dev_server.cli("grants", "revoke", asked.json()["request_id"], "--dev")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["client_id"] == "billing-agent"
    polled = httpx2.post(
        f"{dev_server.issuer}/token",
        data={**credentials, "grant_type": POLL_GRANT, "request_id": asked.json()["request_id"]},
    )
    assert polled.json()["error"] == "invalid_grant"
    missing = dev_server.cli("grants", "revoke", "req_nope", "--dev")
    assert missing.returncode == 1 and "no grant" in missing.stderr
