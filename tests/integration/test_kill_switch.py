"""The kill switch (`agents disable` / `enable`) through the handlers and the CLI, against moto: issued
tokens inactive at once, nothing new issued by any grant type, pending requests cancelled, audited; and
the poll of a JIT request re-checks the agent and the approver at redemption."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from agent_auth.clock import OffsetClock
from agent_auth.operations.agents import disable_agent, enable_agent, list_agents, show_agent
from agent_auth.operations.target import OperationFailed
from tests.conftest import Deployment
from tests.integration.jit_support import approve as approve_link
from tests.integration.jit_support import ask, decide, deliver, link_of, open_link, poll
from tests.integration.lifecycle_support import (
    access_token,
    claims_of,
    delegated,
    introspect,
    lifecycle_policy,
    refresh,
    token_request,
)
from tests.support import serialize_aws_calls

INACTIVE = {"active": False}


@pytest.fixture
def d(deployment: Deployment, tmp_path: Path, clock: OffsetClock) -> Deployment:
    lifecycle_policy(deployment, tmp_path)
    return deployment


def lead_link(d: Deployment) -> str:
    return link_of(next(m for m in deliver(d) if "lead@example.com" in m["to"]))


def test_disable_makes_every_issued_token_inactive_at_once(d: Deployment) -> None:
    # Given a standing token, and one a resource server would check
    token = access_token(d, scope="crm.contacts.read")
    assert introspect(d, token, agent="billing-agent")[1]["active"] is True

    # When the operator disables support-bot
    result = disable_agent(d.target, "support-bot")

    # Then its token is inactive for every caller, on the very next request
    assert result["status"] == "disabled"
    assert introspect(d, token, agent="billing-agent") == (200, INACTIVE)


def test_a_disabled_agent_gets_nothing_new_from_any_grant_type(d: Deployment) -> None:
    refresh_token = delegated(d)
    _, asked = ask(d)
    disable_agent(d.target, "support-bot")

    # Client credentials, refresh and the poll: 401 invalid_client, as for a failed authentication
    assert token_request(d, scope="crm.contacts.read")[0] == 401
    assert refresh(d, refresh_token)[0] == 401
    assert poll(d, asked["request_id"])[0] == 401
    # A new access request and introspection: refused the same way
    assert ask(d)[0] == 401
    assert introspect(d, "anything")[0] == 401
    # And each refusal names the agent, with the reason, in the audit trail
    refusals = [r for r in d.audit_records() if r.get("reason") == "agent_disabled"]
    assert len(refusals) == 5 and {r["client_id"] for r in refusals} == {"support-bot"}


def test_disable_cancels_pending_requests_and_revokes_grants(d: Deployment) -> None:
    # Given a pending request, and an approved one
    _, pending = ask(d)
    deliver(d)
    _, approved = ask(d, reason="Second ticket 4822")
    deliver(d)
    assert approve_link(lead_link_for(d, approved["request_id"])).status == 200

    # When the agent is disabled
    result = disable_agent(d.target, "support-bot")

    # Then the pending request is denied by the operator, and the approved one's grant revoked
    assert result["requests_cancelled"] == [pending["request_id"]]
    assert result["grants_revoked"] == [approved["request_id"]]
    request = d.target.requests.get_request(pending["request_id"])
    assert request is not None and request.status == "denied" and request.decided_by == "tester"
    assert request.deny_reason == "agent disabled"
    [grant] = d.target.grants.grants_of("support-bot")
    assert grant.revoked
    # And the approver who opens the cancelled request's link can no longer decide
    page = open_link(lead_link_for(d, pending["request_id"]))
    assert "csrf" not in page.body
    # And it is one audit record naming what it ended
    [record] = [r for r in d.audit_records() if r["action"] == "agent.disable"]
    assert record["operator"] == "tester" and record["client_id"] == "support-bot"
    assert record["details"]["requests_cancelled"] == [pending["request_id"]]


def lead_link_for(d: Deployment, request_id: str) -> str:
    from agent_auth.devserver.local_aws import mailbox
    from tests.conftest import REGION

    return next(
        link_of(m) for m in mailbox(REGION) if "lead@example.com" in m["to"] and request_id in m["text"]
    )


def test_enable_serves_the_agent_again_but_revoked_tokens_stay_revoked(
    d: Deployment, clock: OffsetClock
) -> None:
    # Given a token and a refresh token from before the disable
    old = access_token(d, scope="crm.contacts.read")
    refresh_token = delegated(d)
    disable_agent(d.target, "support-bot")

    # When the operator enables the agent again, a second later
    clock.offset += 1
    assert enable_agent(d.target, "support-bot")["changed"] is True

    # Then new tokens are issued and active, but what the disable revoked stays revoked
    new = access_token(d, scope="crm.contacts.read")
    assert introspect(d, new)[1]["active"] is True
    assert introspect(d, old) == (200, INACTIVE)
    status, body = refresh(d, refresh_token)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert [r["action"] for r in d.audit_records() if r["action"].startswith("agent.")] == [
        "agent.enable",
        "agent.disable",
    ]


def test_a_grant_approved_before_a_disable_does_not_come_back_after_enable(
    d: Deployment, clock: OffsetClock
) -> None:
    _, asked = ask(d)
    assert approve_link(lead_link(d)).status == 200
    disable_agent(d.target, "support-bot")
    clock.offset += 1
    enable_agent(d.target, "support-bot")
    status, body = poll(d, asked["request_id"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert token_request(d, scope="crm.contacts.write")[1]["error"] == "invalid_scope"


def test_apply_does_not_re_enable_a_disabled_agent(d: Deployment, tmp_path: Path) -> None:
    # Given a disabled agent
    disable_agent(d.target, "support-bot")

    # When a changed policy is applied (support-bot's own entry changed too)
    lifecycle_policy(d, tmp_path, {"agents.support-bot.owner": "new-owner@example.com"})

    # Then it is still disabled
    agent = d.target.agents.get_client("support-bot")
    assert agent is not None and agent.owner == "new-owner@example.com" and agent.disabled
    assert token_request(d, scope="crm.contacts.read")[0] == 401


def test_the_poll_rechecks_the_approver_at_redemption(d: Deployment, tmp_path: Path) -> None:
    # Given a request lead@example.com approved
    _, asked = ask(d)
    assert approve_link(lead_link(d)).status == 200

    # When lead@example.com leaves the approver group before the agent polls
    lifecycle_policy(d, tmp_path, {"approvers.support-leads": ["oncall@example.com"]})

    # Then the poll is refused (Keycloak CVE-2026-16103 checked only at initiation)
    status, body = poll(d, asked["request_id"])
    assert (status, body["error"]) == (400, "invalid_grant")
    [record] = [r for r in d.audit_records() if r.get("reason") == "approver_no_longer_allowed"]
    assert record["client_id"] == "support-bot"


def test_enable_of_an_enabled_agent_changes_nothing(d: Deployment) -> None:
    assert enable_agent(d.target, "support-bot") == {
        "client_id": "support-bot",
        "status": "enabled",
        "changed": False,
    }
    assert not [r for r in d.audit_records() if r["action"] == "agent.enable"]


def test_an_unknown_agent_is_named_in_the_error(d: Deployment) -> None:
    with pytest.raises(OperationFailed, match="no agent named 'nobody'"):
        disable_agent(d.target, "nobody")


def test_agents_list_and_show(d: Deployment) -> None:
    # Given a disabled agent and one with an approved grant and a token
    disable_agent(d.target, "billing-agent")
    _, asked = ask(d)
    assert approve_link(lead_link(d)).status == 200
    token = poll(d, asked["request_id"])[1]["access_token"]

    rows = {r["client_id"]: r for r in list_agents(d.target)}
    assert rows["billing-agent"]["status"] == "disabled"
    assert rows["support-bot"] == {
        "client_id": "support-bot",
        "owner": "owner@example.com",
        "auth_method": "client_secret_basic",
        "roles": ["crm-reader"],
        "jit_rules": 1,
        "delegation": True,
        "status": "enabled",
    }
    shown = show_agent(d.target, "support-bot")
    assert [g["grant_id"] for g in shown["active_grants"]] == [asked["request_id"]]
    assert shown["last_token"]["token_id"] == claims_of(token)["jti"]
    assert shown["last_token"]["grant_type"] == "urn:agent-auth:grant-type:access-request"
    assert show_agent(d.target, "billing-agent")["serves"] == {"crm": "https://crm.example.com"}


def test_agents_cli_prints_tables_and_json(d: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    from agent_auth.cli.main import main
    from tests.integration.test_operator_targets import create_stack

    create_stack(d.clients, d)
    stack = ["--stack", "agent-auth", "--region", "us-east-1"]
    assert main(["agents", "disable", "billing-agent", *stack]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "disabled"
    assert main(["agents", "list", *stack]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["AGENT", "OWNER", "AUTH", "ROLES", "JIT", "RULES", "DELEGATION", "STATUS"]
    assert any(line.startswith("billing-agent") and line.endswith("disabled") for line in table)
    assert main(["agents", "list", "--json", *stack]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["client_id"] for r in rows} == {"support-bot", "billing-agent", "signing-agent", "public-app"}
    assert main(["agents", "show", "support-bot", *stack]) == 0
    shown = capsys.readouterr().out
    assert "Auth method:" in shown and "client_secret_basic" in shown and "Active grants:" in shown
    assert main(["agents", "enable", "billing-agent", *stack]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert main(["agents", "show", "nobody", *stack]) == 1


def test_a_disable_racing_an_approval_leaves_no_usable_grant(
    d: Deployment, monkeypatch: pytest.MonkeyPatch, clock: OffsetClock
) -> None:
    # Given a pending request and its approver's page open
    serialize_aws_calls(monkeypatch)
    _, asked = ask(d)
    link = lead_link(d)
    page = open_link(link)
    outcomes: dict[str, Any] = {}

    # When the approver clicks Approve while the operator disables the agent
    def click() -> None:
        outcomes["approve"] = decide(link, "approve", page.csrf).status

    def kill() -> None:
        outcomes["disable"] = disable_agent(d.target, "support-bot")

    threads = [threading.Thread(target=click), threading.Thread(target=kill)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then whichever won, no grant survives, even after the agent is enabled again
    clock.offset += 1
    enable_agent(d.target, "support-bot")
    assert all(g.revoked for g in d.target.grants.grants_of("support-bot"))
    request = d.target.requests.get_request(asked["request_id"])
    assert request is not None and request.status in ("approved", "denied")
    assert poll(d, asked["request_id"])[0] == 400
