"""Just-in-time access through the handlers against moto: ask, email, link page, decision, poll, expiry."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from agent_auth.clock import OffsetClock
from agent_auth.handlers import wellknown
from agent_auth.jit.links import link_url, sign_link
from agent_auth.jit.requests import request_digest
from agent_auth.operations import revoke_grant
from tests.conftest import ISSUER, Deployment
from tests.integration.jit_support import (
    approve,
    ask,
    client_token,
    decide,
    deliver,
    link_of,
    open_link,
    poll,
)
from tests.support import load_event

pytestmark = pytest.mark.usefixtures("clock")


def state(d: Deployment) -> tuple[Any, ...]:
    s = d.settings
    return tuple(sorted(map(repr, d.scan(t))) for t in (s.requests_table, s.grants_table, s.agents_table))


def audited_once(d: Deployment, action: Any) -> Any:
    """Run `action`; exactly one audit record must come of it."""
    before = len(d.audit_records())
    result = action()
    assert len(d.audit_records()) == before + 1
    return result


def verify(access_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(json.loads(wellknown.lambda_handler(load_event("jwks.json"), None)["body"]))
    return dict(jose_jwt.decode(access_token, keys, algorithms=["RS256"]).claims)


def asked_and_mailed(d: Deployment) -> tuple[str, str]:
    status, body = ask(d)
    assert status == 202, body
    [mail] = [m for m in deliver(d) if m["to"] == "lead@example.com" and body["request_id"] in m["text"]]
    return body["request_id"], link_of(mail)


# --- the whole flow ------------------------------------------------------------------------------


def test_ask_email_view_approve_poll_then_expire(deployment: Deployment, clock: OffsetClock) -> None:
    # Given the support bot asks for write access
    status, body = ask(deployment, duration="1800")
    assert (
        status == 202 and body["status"] == "pending" and body["interval"] == 5 and body["expires_in"] == 3600
    )
    request_id = body["request_id"]
    # When the stream reaches the notifier / Then every approver but the agent's owner gets one email
    mails = deliver(deployment)
    assert sorted(m["to"] for m in mails) == ["lead@example.com", "oncall@example.com"]
    mail = mails[0]
    assert "support-bot" in mail["subject"] and "crm.contacts.write" in mail["text"]
    assert "Change contacts" in mail["text"] and "owner@example.com" in mail["text"]
    assert "Merge duplicate contacts (ticket 4821)" in mail["text"] and "30 minutes" in mail["text"]
    assert link_of(mail) in mail["html"].replace("&amp;", "&")
    # And polling says pending
    assert poll(deployment, request_id)[1]["error"] == "authorization_pending"

    # When the approver opens the link (twice, and a scanner sends HEAD) / Then nothing changes
    before = state(deployment)
    page = open_link(link_of(mail))
    open_link(link_of(mail))
    assert open_link(link_of(mail), "HEAD").body == ""
    assert page.status == 200 and "Approve" in page.body and "Merge duplicate contacts" in page.body
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Strict" in page.headers["Set-Cookie"]
    assert state(deployment) == before

    # When they approve / Then the page says so
    result = decide(link_of(mail), "approve", page.csrf)
    assert result.status == 200 and result.title == "Approved"

    # And the agent's poll (after the interval) gets an elevated token within the grant
    clock.offset += 6
    status, token = poll(deployment, request_id)
    assert status == 200, token
    claims = verify(token["access_token"])
    grant_end = int(clock.now()) - 6 + 1800
    assert claims["scope"] == "crm.contacts.write" and claims["exp"] <= grant_end + 1
    assert claims["access_request"] == request_id and claims["approved_by"] == "lead@example.com"

    # And client credentials for that scope work while the grant lasts, capped at its end
    clock.offset += 1500
    status, later = client_token(deployment, "crm.contacts.write")
    assert status == 200 and later["expires_in"] <= 1800 - 1500
    # And after the grant's end the scope is refused again
    clock.offset += 400
    status, refused = client_token(deployment, "crm.contacts.write")
    assert (status, refused["error"]) == (400, "invalid_scope")
    assert poll(deployment, request_id)[1]["error"] == "invalid_grant"


def test_every_view_and_decision_is_audited(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    approve(link)
    actions = [r["action"] for r in deployment.audit_records()]
    assert actions[:4] == ["approval.decide", "approval.view", "approval.notify", "access.request"]
    decided = deployment.audit_records()[0]
    assert decided["approver"] == "lead@example.com" and decided["reason"] == "approved"
    assert "sig=" not in json.dumps(deployment.audit_records(), default=str)


def test_auto_rule_approves_at_once_and_single_use_grants_are_consumed(deployment: Deployment) -> None:
    status, body = ask(deployment, client="billing-agent")
    assert status == 200 and body["status"] == "approved"
    assert deliver(deployment) == [], "auto-approved requests email nobody"
    assert poll(deployment, body["request_id"], client="billing-agent")[0] == 200
    # Then the single-use grant is gone: neither a second poll nor client credentials draw on it again
    assert poll(deployment, body["request_id"], client="billing-agent")[1]["error"] == "invalid_grant"
    status, refused = client_token(deployment, "crm.contacts.write", client="support-bot")
    assert refused["error"] == "invalid_scope"


def test_revoked_grant_issues_nothing_more(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    approve(link)
    assert client_token(deployment, "crm.contacts.write")[0] == 200
    revoked = revoke_grant(deployment.target, request_id)
    assert revoked["client_id"] == "support-bot"
    assert client_token(deployment, "crm.contacts.write")[1]["error"] == "invalid_scope"
    assert deployment.audit_records()[-0]["action"] in ("grant.revoke", "token.issue")
    assert any(
        r["action"] == "grant.revoke" and r["operator"] == "tester" for r in deployment.audit_records()
    )


# --- asking: refusals ----------------------------------------------------------------------------

ASK_BAD = {
    "never scope": ({"scope": "billing.invoices.read"}, 403, "access_denied", "never"),
    "no rule": ({"scope": "crm.contacts.read billing.invoices.read"}, 403, "access_denied", "never"),
    "scope outside any rule": (
        {"scope": "crm.contacts.read", "resource": "https://billing.example.com"},
        400,
        "invalid_target",
        "resource_not_allowed",
    ),
    "beyond max_duration": ({"duration": "7200"}, 400, "invalid_request", "duration_beyond_max"),
    "duration not a number": ({"duration": "1h"}, 400, "invalid_request", "bad_duration"),
    "missing reason": ({"reason": None}, 400, "invalid_request", "missing_reason"),
    "oversized reason": ({"reason": "x" * 501}, 400, "invalid_request", "reason_too_long"),
    "header injection in reason": (
        {"reason": "ok\r\nBcc: evil@example.com"},
        400,
        "invalid_request",
        "reason_control_characters",
    ),
    "control characters in reason": (
        {"reason": "ok\x1b[31m"},
        400,
        "invalid_request",
        "reason_control_characters",
    ),
    "missing scope": ({"scope": None}, 400, "invalid_request", "missing_scope"),
}


@pytest.mark.parametrize("case", list(ASK_BAD), ids=list(ASK_BAD))
def test_bad_requests_are_refused_once_and_audited(deployment: Deployment, case: str) -> None:
    fields, status, error, reason = ASK_BAD[case]
    before, audited = state(deployment), len(deployment.audit_records())
    got, body = ask(deployment, **fields)
    assert (got, body["error"]) == (status, error), body
    assert state(deployment) == before
    records = deployment.audit_records()
    assert len(records) == audited + 1 and records[0]["reason"] == reason and records[0]["decision"] == "deny"


def test_hostile_reason_is_escaped_on_the_page_and_in_the_email(deployment: Deployment) -> None:
    status, _body = ask(deployment, reason='<script>alert(1)</script> "quoted" & <b>bold</b>')
    assert status == 202
    [mail, _] = deliver(deployment)
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    page = open_link(link_of(mail))
    assert "<script>" not in page.body and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


# --- polling ----------------------------------------------------------------------------------------


def test_polling_rules(deployment: Deployment, clock: OffsetClock) -> None:
    request_id, _ = asked_and_mailed(deployment)
    # Another agent's request looks like no request
    assert poll(deployment, request_id, client="billing-agent")[1]["error"] == "invalid_grant"
    assert poll(deployment, "req_doesnotexist")[1]["error"] == "invalid_grant"
    # Faster than the interval: slow_down; after it: pending again
    assert poll(deployment, request_id)[1]["error"] == "authorization_pending"
    assert poll(deployment, request_id)[1]["error"] == "slow_down"
    clock.offset += 5
    assert poll(deployment, request_id)[1]["error"] == "authorization_pending"
    # Nobody decides within the hour: expired_token
    clock.offset += 3600
    assert poll(deployment, request_id)[1]["error"] == "expired_token"


def test_denied_request_polls_access_denied(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    page = open_link(link)
    assert decide(link, "deny", page.csrf).title == "Denied"
    assert poll(deployment, request_id)[1]["error"] == "access_denied"
    # Only a tombstone: the denial's revoked grant, which no token can draw on
    [tombstone] = deployment.scan(deployment.settings.grants_table)
    assert tombstone["revoked"] == {"BOOL": True}


# --- deciding: refusals -------------------------------------------------------------------------------


def _tamper(link: str, name: str, value: str) -> str:
    from urllib.parse import parse_qsl, urlencode, urlsplit

    url = urlsplit(link)
    query = dict(parse_qsl(url.query)) | {name: value}
    return f"{url.scheme}://{url.netloc}{url.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    ("name", "value"),
    [("approver", "oncall@example.com"), ("expires", "4102444800"), ("sig", "AAAA"), ("sig", "!!")],
)
def test_tampered_links_get_an_error_page_and_change_nothing(
    deployment: Deployment, name: str, value: str
) -> None:
    _, link = asked_and_mailed(deployment)
    real_csrf = open_link(link).csrf
    before = state(deployment)
    bad = _tamper(link, name, value)
    assert audited_once(deployment, lambda: open_link(bad)).status == 403
    assert audited_once(deployment, lambda: decide(bad, "approve", real_csrf)).status == 403
    assert state(deployment) == before
    assert deployment.audit_records()[0]["decision"] == "deny"


def test_a_link_for_another_request_is_invalid(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    other, _ = asked_and_mailed(deployment)
    moved = link.replace(link.split("/approvals/")[1].split("?")[0], other)
    assert open_link(moved).status == 403


def test_expired_link(deployment: Deployment, clock: OffsetClock) -> None:
    _, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    clock.offset += 3601
    assert open_link(link).status == 410
    assert decide(link, "approve", csrf).status == 410


def test_origin_null_from_a_no_referrer_page_is_accepted(deployment: Deployment) -> None:
    # Browsers send Origin: null when the page's Referrer-Policy is no-referrer (Fetch standard)
    _, link = asked_and_mailed(deployment)
    assert decide(link, "approve", open_link(link).csrf, origin="null").title == "Approved"


@pytest.mark.parametrize("csrf_case", ["missing", "wrong", "no cookie", "other origin"])
def test_post_needs_the_pages_csrf_token(deployment: Deployment, csrf_case: str) -> None:
    _request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    before = state(deployment)
    attempts = {
        "missing": lambda: decide(link, "approve", None, cookie=csrf),
        "wrong": lambda: decide(link, "approve", "x" * 32, cookie=csrf),
        "no cookie": lambda: decide(link, "approve", csrf, cookie=""),
        "other origin": lambda: decide(link, "approve", csrf, origin="https://evil.example.com"),
    }
    page = audited_once(deployment, attempts[csrf_case])
    assert page.status == 403 and state(deployment) == before
    assert deployment.audit_records()[0]["reason"] == "csrf"


def test_the_owner_cannot_approve(deployment: Deployment) -> None:
    from agent_auth.adapters.kms_mac import KmsMac

    request_id, _ = asked_and_mailed(deployment)
    request = deployment.target.requests.get_request(request_id)
    assert request is not None
    mac = KmsMac(deployment.clients.kms, deployment.settings.approval_key_arn)
    own = sign_link(
        mac,
        request_id=request_id,
        approver="owner@example.com",
        digest=request_digest(request),
        expires_at=request.expires_at,
    )
    link = link_url(ISSUER, own)
    page = open_link(link)
    assert page.status == 403 and "own" in page.body and 'name="decision"' not in page.body


def test_an_approver_removed_since_the_email_cannot_decide(deployment: Deployment) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy
    from tests.support import policy_document, write_policy

    request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    document = policy_document(deployment.keys)
    document["approvers"]["support-leads"] = ["oncall@example.com"]
    apply_policy(deployment.target, load_policy(str(write_policy(deployment.policy_file, document))))
    page = decide(link, "approve", csrf)
    assert page.status == 403 and "no longer an approver" in page.body
    assert deployment.target.requests.get_request(request_id).status == "pending"  # type: ignore[union-attr]


def test_a_second_click_shows_the_outcome(deployment: Deployment) -> None:
    _request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    assert decide(link, "approve", csrf).title == "Approved"
    before = state(deployment)
    again = decide(link, "deny", csrf)
    assert again.title == "Approved" and 'name="decision"' not in again.body
    assert state(deployment) == before


def test_approve_and_deny_racing_have_exactly_one_winner(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both deciders pass every check before either writes; the conditional transaction picks one.

    moto's in-process backend is not thread-safe, so AWS calls are serialized here, as DynamoDB
    serializes writes to one item; the barrier makes both decisions read "pending" first.
    """
    import threading

    from agent_auth.adapters.jit_tables import RequestTable
    from tests.support import serialize_aws_calls

    request_id, link = asked_and_mailed(deployment)
    other = next(
        m for m in deliver(deployment) if m["to"] == "oncall@example.com" and request_id in m["text"]
    )
    csrf_a, csrf_b = open_link(link).csrf, open_link(link_of(other)).csrf

    barrier, reads = threading.Barrier(2, timeout=30), [0]
    original_get = RequestTable.get_request

    def get_then_wait(self: RequestTable, rid: str) -> dict[str, Any] | None:
        found = original_get(self, rid)
        reads[0] += 1
        if reads[0] <= 2:
            barrier.wait()  # both deciders have now seen the request pending
        return found

    serialize_aws_calls(monkeypatch)
    monkeypatch.setattr(RequestTable, "get_request", get_then_wait)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(decide, link, "approve", csrf_a),
            pool.submit(decide, link_of(other), "deny", csrf_b),
        ]
        pages = [f.result(timeout=60) for f in futures]

    final = deployment.target.requests.get_request(request_id)
    assert final is not None and final.status in ("approved", "denied")
    # Then both pages show the one outcome, one decision is recorded as made, and a grant exists iff approved
    assert {p.title for p in pages} == {final.status.capitalize()}
    made = [
        r for r in deployment.audit_records() if r["action"] == "approval.decide" and r["decision"] == "allow"
    ]
    lost = [r for r in deployment.audit_records() if r.get("reason") == "already_decided"]
    assert len(made) == 1 and len(lost) == 1
    live = [g for g in deployment.scan(deployment.settings.grants_table) if "revoked" not in g]
    assert len(live) == (1 if final.status == "approved" else 0)


# --- policy changes, dependency failures, unproven names (found in review) --------------------------


def _apply(deployment: Deployment, change: Any) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy
    from tests.support import policy_document, write_policy

    document = policy_document(deployment.keys)
    change(document)
    apply_policy(deployment.target, load_policy(str(write_policy(deployment.policy_file, document))))


@pytest.mark.parametrize("change", ["rule removed", "scope now never"])
def test_a_policy_change_ends_the_grants_it_no_longer_allows(
    deployment: Deployment, clock: OffsetClock, change: str
) -> None:
    request_id, link = asked_and_mailed(deployment)
    approve(link)
    assert client_token(deployment, "crm.contacts.write")[0] == 200

    def edit(document: dict[str, Any]) -> None:
        bot = document["agents"]["support-bot"]
        if change == "rule removed":
            bot["jit"] = []
        else:
            bot["never"] = [*bot["never"], "crm.contacts.write"]
            bot["jit"] = [{"role": "crm-reader", "approvers": "support-leads"}]

    _apply(deployment, edit)
    assert client_token(deployment, "crm.contacts.write")[1]["error"] == "invalid_scope"
    clock.offset += 6
    status, body = poll(deployment, request_id)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_request_the_policy_no_longer_allows_cannot_be_approved(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    csrf = open_link(link).csrf
    _apply(deployment, lambda document: document["agents"]["support-bot"].update(jit=[]))
    page = decide(link, "approve", csrf)
    assert page.status == 409 and 'name="decision"' not in page.body
    assert deployment.target.requests.get_request(request_id).status == "pending"  # type: ignore[union-attr]


def test_a_kms_failure_does_not_use_up_a_single_use_grant(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_auth.adapters.kms import KmsSigner
    from agent_auth.errors import DependencyFailure

    status, body = ask(deployment, client="billing-agent")
    assert status == 200
    original = KmsSigner.sign

    def failing(self: KmsSigner, signing_input: bytes) -> bytes:
        raise DependencyFailure("KMS throttled")

    monkeypatch.setattr(KmsSigner, "sign", failing)
    assert poll(deployment, body["request_id"], client="billing-agent")[0] == 503
    monkeypatch.setattr(KmsSigner, "sign", original)
    assert poll(deployment, body["request_id"], client="billing-agent")[0] == 200


def test_a_refused_post_does_not_record_the_unproven_approver(deployment: Deployment) -> None:
    _, link = asked_and_mailed(deployment)
    decide(link, "approve", None, cookie="x", approver="ceo@example.com")
    record = deployment.audit_records()[0]
    assert record["reason"] == "csrf" and "approver" not in record


def test_a_poll_of_a_denied_request_is_a_400(deployment: Deployment) -> None:
    request_id, link = asked_and_mailed(deployment)
    decide(link, "deny", open_link(link).csrf)
    status, body = poll(deployment, request_id)
    assert (status, body["error"]) == (400, "access_denied")


@pytest.mark.parametrize("body", ["decision=maybe", "not a form at all", ""])
def test_a_post_that_is_not_the_pages_form_is_refused_and_audited(deployment: Deployment, body: str) -> None:
    from tests.integration.jit_support import _api_path
    from tests.support import with_body

    _, link = asked_and_mailed(deployment)
    path = _api_path(link.split("?")[0].split(".com", 1)[1])
    event = with_body(load_event("approval_decide.json"), body)
    event.update(path=path, pathParameters={"request_id": path.rsplit("/", 1)[1]})
    before = state(deployment)
    from agent_auth.handlers import approvals

    result = audited_once(deployment, lambda: approvals.lambda_handler(event, None))
    assert result["statusCode"] == 403 and state(deployment) == before
