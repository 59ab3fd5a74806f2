"""`agent-auth requests --dev` judges expiry by the development server's clock, which POST /_dev/clock
moves (it used to use the wall clock, so a request past its end still read "pending")."""

from __future__ import annotations

import json

import httpx2

from tests.e2e.conftest import DevServer
from tests.e2e.test_jit_flow import advance


def test_requests_follow_the_dev_clock(dev_server: DevServer) -> None:
    # Given a pending access request
    credentials = dev_server.credentials["support-bot"]
    asked = httpx2.post(
        f"{dev_server.issuer}/access-requests",
        auth=(credentials["client_id"], credentials["client_secret"]),
        data={"scope": "crm.contacts.write", "reason": "Clock test", "duration": "600"},
    )
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["request_id"]

    def status() -> str:
        listed = dev_server.cli("requests", "--dev", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = [json.loads(line) for line in listed.stdout.splitlines() if request_id in line]
        return str(row["status"])

    assert status() == "pending"
    # When the development clock moves past the request's hour of waiting
    advance(dev_server, 3601)
    # Then the CLI sees it expired, as the token endpoint does
    assert status() == "expired"
