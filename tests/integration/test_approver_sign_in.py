"""Approvers who sign in, and denials with a reason, through the approvals and authorize handlers on moto.

The support-leads group is applied with `sign_in: true`; sessions are stored as a completed upstream
sign-in stores them (SignInTable.put_session), so these tests prove the wiring: the approval function
reads the session table, sends a browser without a session to /authorize/approver, refuses another
user, and decides for the link's approver. The upstream round trip itself runs in the e2e browser test.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from agent_auth.adapters.delegation_tables import SignInTable
from agent_auth.handlers import approvals, authorize
from agent_auth.oauth.authorize.stores import session_hash
from agent_auth.records import UserSession
from tests.conftest import ISSUER, Deployment
from tests.integration.jit_support import PageResult, _api_path, decide, poll
from tests.integration.test_access_requests import asked_and_mailed, audited_once, state
from tests.integration.test_approval_decisions import _apply
from tests.support import load_event

pytestmark = pytest.mark.usefixtures("clock")
SESSION = "__Host-agent-auth-session"


def require_sign_in(document: dict[str, Any]) -> None:
    members = document["approvers"]["support-leads"]
    document["approvers"]["support-leads"] = {"members": members, "sign_in": True}


@pytest.fixture
def signed_in_group(deployment: Deployment) -> Deployment:
    _apply(deployment, require_sign_in)
    return deployment


def signed_in(d: Deployment, email: str, *, lifetime: int = 3600) -> str:
    """A session as the upstream callback leaves it; the cookie value the browser would hold."""
    cookie = f"session-{email}-{lifetime}-{time.time_ns()}"
    now = int(time.time())
    table = SignInTable(d.clients.dynamodb, d.settings.signins_table)
    table.put_session(UserSession(session_hash(cookie), email, (), now - 10, now + lifetime))
    return cookie


def open_as(link: str, session: str | None) -> PageResult:
    url = urlsplit(link)
    query = dict(parse_qsl(url.query))
    event = copy.deepcopy(load_event("approval_view.json"))
    event.update(
        path=_api_path(url.path),
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()},
        pathParameters={"request_id": url.path.rsplit("/", 1)[1]},
    )
    if session is not None:
        event["headers"]["Cookie"] = f"{SESSION}={session}"
        event["multiValueHeaders"]["Cookie"] = [f"{SESSION}={session}"]
    result = approvals.lambda_handler(event, None)
    return PageResult(result["statusCode"], result["headers"], result["body"])


def decide_as(link: str, choice: str, csrf: str, session: str | None, **fields: str) -> PageResult:
    both = f"{csrf}; {SESSION}={session}" if session is not None else csrf
    return decide(link, choice, csrf, cookie=both, **fields)


def request_of(d: Deployment, request_id: str) -> Any:
    return d.target.requests.get_request(request_id)


# --- no session: sent to sign in, nothing shown ---------------------------------------------------


def test_without_a_session_the_link_redirects_to_the_approver_sign_in(signed_in_group: Deployment) -> None:
    d = signed_in_group
    request_id, link = asked_and_mailed(d)
    before = state(d)
    page = audited_once(d, lambda: open_as(link, None))
    assert page.status == 302 and page.body == ""
    location = urlsplit(page.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/authorize/approver"
    carried = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert carried["request"] == request_id and carried["approver"] == "lead@example.com"
    assert carried["sig"] == dict(parse_qsl(urlsplit(link).query))["sig"]
    record = d.audit_records()[0]
    assert (record["action"], record["reason"], record["details"]["status"]) == (
        "approval.view",
        "sign_in_required",
        302,
    )
    assert state(d) == before


def test_an_expired_session_is_sent_to_sign_in_again(signed_in_group: Deployment) -> None:
    _, link = asked_and_mailed(signed_in_group)
    page = open_as(link, signed_in(signed_in_group, "lead@example.com", lifetime=-1))
    assert page.status == 302 and "/authorize/approver?" in page.headers["Location"]


# --- signed in as the approver ---------------------------------------------------------------------


def test_the_signed_in_approver_approves_and_the_agent_gets_its_token(signed_in_group: Deployment) -> None:
    d = signed_in_group
    request_id, link = asked_and_mailed(d)
    session = signed_in(d, "lead@example.com")
    page = open_as(link, session)
    assert page.status == 200 and page.title == "Access request" and 'name="decision"' in page.body
    assert 'name="reason"' in page.body and 'maxlength="500"' in page.body
    decided = audited_once(d, lambda: decide_as(link, "approve", page.csrf, session))
    assert (decided.status, decided.title) == (200, "Approved")
    record = d.audit_records()[0]
    assert (record["action"], record["approver"], record["user"]) == (
        "approval.decide",
        "lead@example.com",
        "lead@example.com",
    )
    assert request_of(d, request_id).status == "approved"
    status, body = poll(d, request_id)
    assert status == 200 and body["scope"] == "crm.contacts.write"


def test_a_decision_whose_session_ended_after_the_page_decides_nothing(signed_in_group: Deployment) -> None:
    d = signed_in_group
    request_id, link = asked_and_mailed(d)
    page = open_as(link, signed_in(d, "lead@example.com"))
    before = state(d)
    # The POST carries a cookie with no live session behind it (signed out, or expired)
    refused = audited_once(d, lambda: decide_as(link, "approve", page.csrf, "no-such-session"))
    assert refused.status == 403 and refused.title == "Sign in to decide"
    assert d.audit_records()[0]["reason"] == "sign_in_required"
    assert state(d) == before and request_of(d, request_id).status == "pending"


# --- signed in as someone else ---------------------------------------------------------------------


def test_a_forwarded_link_opened_by_another_user_is_refused_and_changes_nothing(
    signed_in_group: Deployment,
) -> None:
    d = signed_in_group
    request_id, link = asked_and_mailed(d)
    before = state(d)
    page = audited_once(d, lambda: open_as(link, signed_in(d, "mallory@example.com")))
    assert page.status == 403 and page.title == "This link is for someone else"
    assert "This link is for lead@example.com; you are signed in as mallory@example.com" in page.body
    assert 'name="decision"' not in page.body and "Merge duplicate" not in page.body  # nothing shown
    record = d.audit_records()[0]
    assert (record["reason"], record["approver"], record["user"]) == (
        "wrong_approver",
        "lead@example.com",
        "mallory@example.com",
    )
    assert state(d) == before and request_of(d, request_id).status == "pending"


def test_a_post_by_another_user_with_a_token_from_the_approvers_page_is_refused(
    signed_in_group: Deployment,
) -> None:
    d = signed_in_group
    request_id, link = asked_and_mailed(d)
    csrf = open_as(link, signed_in(d, "lead@example.com")).csrf
    before = state(d)
    page = audited_once(d, lambda: decide_as(link, "approve", csrf, signed_in(d, "oncall@example.com")))
    assert page.status == 403 and d.audit_records()[0]["reason"] == "wrong_approver"
    assert state(d) == before and request_of(d, request_id).status == "pending"


# --- the approver sign-in route ---------------------------------------------------------------------


def authorize_get(path: str, query: dict[str, str]) -> dict[str, Any]:
    event = copy.deepcopy(load_event("approval_view.json"))
    event.update(
        resource=path,
        path=path,
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} or None,
        pathParameters=None,
    )
    return authorize.lambda_handler(event, None)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"request": "req_abc"},
        {"request": "../authorize", "approver": "a@example.com", "d": "a" * 64, "expires": "1", "sig": "QQ"},
        {"request": "req_abc", "approver": "a@example.com", "d": "short", "expires": "1", "sig": "QQ"},
        {"return_to": "https://evil.example.com/"},
    ],
)
def test_the_approver_sign_in_refuses_anything_but_an_approval_link(
    deployment: Deployment, query: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upstream provider is configured (never reached: nothing here may start a sign-in)
    monkeypatch.setenv("UPSTREAM_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("UPSTREAM_CLIENT_ID", "agent-auth")
    monkeypatch.setenv("UPSTREAM_CLIENT_SECRET", "not-used")
    authorize.container.reset()
    before = deployment.scan(deployment.settings.signins_table)
    result = audited_once(deployment, lambda: authorize_get("/authorize/approver", query))
    assert result["statusCode"] == 400 and "Location" not in result["headers"]
    # (the flow's records carry whole seconds, so this one may sort before the setup's)
    [record] = [r for r in deployment.audit_records() if r["action"] == "authorize.approver_sign_in"]
    assert (record["decision"], record["reason"]) == ("deny", "invalid_return_target")
    assert deployment.scan(deployment.settings.signins_table) == before


# --- deny with a reason ------------------------------------------------------------------------------


def test_a_denial_with_a_reason_is_stored_audited_and_listed_but_the_poll_stays_fixed(
    deployment: Deployment,
) -> None:
    d = deployment
    request_id, link = asked_and_mailed(d)
    page = open_as(link, None)  # a group without sign_in: as before
    assert page.status == 200 and 'name="reason"' in page.body
    denied = decide(link, "deny", page.csrf, reason="Customer is not verified (see ticket 4821)")
    assert (denied.status, denied.title) == (200, "Denied")
    assert request_of(d, request_id).deny_reason == "Customer is not verified (see ticket 4821)"
    assert d.audit_records()[0]["reason"] == "denied: Customer is not verified (see ticket 4821)"
    from agent_auth.operations.requests import list_requests

    [row] = [r for r in list_requests(d.target) if r["request_id"] == request_id]
    assert row["deny_reason"] == "Customer is not verified (see ticket 4821)"
    status, body = poll(d, request_id)
    # RFC 6749 §5.2 error_description: a fixed description, never the approver's words
    assert (status, body["error"]) == (400, "access_denied")
    assert "ticket" not in json.dumps(body)


def test_a_denial_with_control_characters_in_its_reason_decides_nothing(deployment: Deployment) -> None:
    d = deployment
    request_id, link = asked_and_mailed(d)
    page = open_as(link, None)
    before = state(d)
    refused = audited_once(d, lambda: decide(link, "deny", page.csrf, reason="no\x1b[31m red"))
    assert refused.status == 400 and refused.title == "The reason was not accepted"
    assert 'name="decision"' in refused.body  # the form again
    assert d.audit_records()[0]["reason"] == "deny_reason_refused"
    assert state(d) == before and request_of(d, request_id).status == "pending"
