"""Deciding from an approval link, hardened: each test names the hole it closes (found in review).

Through the approvals handler against moto, as Lambda runs it. The rules themselves are unit-tested with
fakes in tests/unit/test_approval_service.py; these prove the wiring holds them end to end.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.conftest import Deployment
from tests.integration.jit_support import decide, deliver, link_of, open_link
from tests.integration.test_access_requests import asked_and_mailed, audited_once, state
from tests.support import recording_aws_calls

pytestmark = pytest.mark.usefixtures("clock")


def _without(link: str, name: str) -> str:
    url = urlsplit(link)
    query = {k: v for k, v in parse_qsl(url.query) if k != name}
    return f"{url.scheme}://{url.netloc}{url.path}?{urlencode(query)}"


def _apply(deployment: Deployment, change: Any) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy
    from tests.support import policy_document, write_policy

    document = policy_document(deployment.keys)
    change(document)
    apply_policy(deployment.target, load_policy(str(write_policy(deployment.policy_file, document))))


# --- the CSRF token is bound to the link ------------------------------------------------------------


def test_a_cookie_and_field_pair_never_issued_for_the_link_decides_nothing(deployment: Deployment) -> None:
    # Given a pending request and its link, whose page was never rendered
    request_id, link = asked_and_mailed(deployment)
    before = state(deployment)
    # When someone posts a double-submit pair of their own choosing
    page = audited_once(deployment, lambda: decide(link, "approve", "x" * 32, cookie="x" * 32))
    # Then it is refused, audited as a CSRF refusal, and nothing is decided
    assert page.status == 403 and 'name="decision"' not in page.body
    assert deployment.audit_records()[0]["reason"] == "csrf"
    assert state(deployment) == before
    assert deployment.target.requests.get_request(request_id).status == "pending"  # type: ignore[union-attr]


def test_a_token_issued_for_another_approvers_link_is_refused(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    other = next(
        m for m in deliver(deployment) if m["to"] == "oncall@example.com" and request_id in m["text"]
    )
    their_csrf = open_link(link_of(other)).csrf
    before = state(deployment)
    page = audited_once(deployment, lambda: decide(link, "approve", their_csrf))
    assert page.status == 403 and state(deployment) == before


def test_a_token_issued_for_the_link_still_decides(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    assert decide(link, "approve", open_link(link).csrf).title == "Approved"


# --- ownership is re-checked against the current agent ------------------------------------------------


def make_lead_the_owner(document: dict[str, Any]) -> None:
    document["agents"]["support-bot"]["owner"] = "lead@example.com"


def test_an_approver_made_the_owner_by_an_apply_cannot_view_to_decide(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    _apply(deployment, make_lead_the_owner)
    page = open_link(link)
    assert page.status == 403 and 'name="decision"' not in page.body
    assert deployment.audit_records()[0]["reason"] == "owner"


def test_an_approver_made_the_owner_by_an_apply_cannot_decide(deployment: Deployment) -> None:
    # Given lead opened the page while still only an approver
    request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    # When an apply makes lead the agent's owner, and lead then approves
    _apply(deployment, make_lead_the_owner)
    page = audited_once(deployment, lambda: decide(link, "approve", csrf))
    # Then the decision is refused, and the request stays pending with no grant
    assert page.status == 403 and deployment.audit_records()[0]["reason"] == "owner"
    assert deployment.target.requests.get_request(request_id).status == "pending"  # type: ignore[union-attr]
    assert deployment.scan(deployment.settings.grants_table) == []


# --- a conflicting second decision ------------------------------------------------------------------


def test_a_conflicting_second_decision_answers_409_with_the_outcome(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    assert decide(link, "approve", csrf).status == 200
    before = state(deployment)
    conflicting = audited_once(deployment, lambda: decide(link, "deny", csrf))
    assert conflicting.status == 409 and conflicting.title == "Approved"
    assert "lead@example.com" in conflicting.body and state(deployment) == before


def test_the_same_decision_again_shows_the_outcome(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    assert decide(link, "deny", csrf).status == 200
    again = decide(link, "deny", csrf)
    assert (again.status, again.title) == (200, "Denied")


def test_another_approvers_conflicting_decision_answers_409(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    other = link_of(
        next(m for m in deliver(deployment) if m["to"] == "oncall@example.com" and request_id in m["text"])
    )
    their_csrf = open_link(other).csrf  # oncall opened the page while it was still pending
    decide(link, "approve", open_link(link).csrf)
    page = decide(other, "deny", their_csrf)
    assert (page.status, page.title) == (409, "Approved")


# --- the link's MAC is verified before anything is read -----------------------------------------------


def test_a_forged_link_is_refused_without_reading_the_request(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    open_link(link)  # a warm execution environment: its clients exist
    forged = link.replace("sig=", "sig=AAAA", 1)
    with recording_aws_calls() as log:
        page = open_link(forged)
    assert page.status == 403
    # The source's bad-link counter is read (GetItem) and counted (UpdateItem); the request never is.
    assert log.calls == Counter(
        {"dynamodb:GetItem": 1, "kms:VerifyMac": 1, "dynamodb:UpdateItem": 1, "dynamodb:PutItem": 1}
    ), "no read of the request before the MAC"


def test_a_link_without_its_digest_is_invalid(deployment: Deployment) -> None:
    # Links carry what they were signed over; an old-format link (no digest) is simply invalid
    _, link = asked_and_mailed(deployment)
    assert "d=" in urlsplit(link).query
    old = _without(link, "d")
    assert audited_once(deployment, lambda: open_link(old)).status == 403


def test_a_request_changed_after_the_email_cannot_be_decided(deployment: Deployment) -> None:
    # Given the request's reason is changed in the table after the email went out
    request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    deployment.clients.dynamodb.update_item(
        TableName=deployment.settings.requests_table,
        Key={"pk": {"S": request_id}},
        UpdateExpression="SET reason = :r",
        ExpressionAttributeValues={":r": {"S": "Export every contact"}},
    )
    # Then the link no longer opens a decidable page, and a decision is refused
    assert open_link(link).status == 403
    assert decide(link, "approve", csrf).status == 403
    assert deployment.target.requests.get_request(request_id).status == "pending"  # type: ignore[union-attr]


def test_the_digest_parameter_cannot_be_swapped(deployment: Deployment) -> None:
    # A digest that matches the changed request, but was not signed, is refused by the MAC
    from agent_auth.jit.requests import request_digest

    request_id, link = asked_and_mailed(deployment)
    request = deployment.target.requests.get_request(request_id)
    assert request is not None
    from dataclasses import replace

    swapped = urlsplit(link)
    query = dict(parse_qsl(swapped.query)) | {"d": request_digest(replace(request, reason="other"))}
    bad = f"{swapped.scheme}://{swapped.netloc}{swapped.path}?{urlencode(query)}"
    assert open_link(bad).status == 403


# --- every page goes through one shell ---------------------------------------------------------------


def test_other_methods_are_refused_with_an_html_page_and_audited(deployment: Deployment) -> None:
    import copy

    from agent_auth.handlers import approvals
    from tests.support import load_event

    _, link = asked_and_mailed(deployment)
    event = copy.deepcopy(load_event("approval_view.json"))
    event.update(httpMethod="PUT", path=urlsplit(link).path.removeprefix("/v1"))
    result = audited_once(deployment, lambda: approvals.lambda_handler(event, None))
    assert result["statusCode"] == 405 and "POST" in result["headers"]["Allow"]
    assert result["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert result["headers"]["Cache-Control"] == "no-store"


def test_a_kms_failure_is_a_503_page_with_one_record(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.errors import DependencyFailure

    _, link = asked_and_mailed(deployment)

    def failing(self: KmsMac, message: bytes, mac: bytes) -> bool:
        raise DependencyFailure("KMS throttled")

    monkeypatch.setattr(KmsMac, "verify_mac", failing)
    page = audited_once(deployment, lambda: open_link(link))
    assert page.status == 503 and page.headers["Content-Type"].startswith("text/html")
    assert "throttled" not in page.body
    assert deployment.audit_records()[0]["reason"] == "dependency_failure"
