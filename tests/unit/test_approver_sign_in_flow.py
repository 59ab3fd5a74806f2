"""An approver's sign-in (GET /authorize/approver, then the callback) with in-memory stores: it returns
only to one of our approval pages, sets the session the approval page reads, asks no consent and
issues no code. Every call writes exactly one audit record."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from agent_auth.oauth.authorize.flow import ErrorPage, Redirect
from agent_auth.oauth.authorize.stores import session_hash
from agent_auth.oauth.upstream.relying_party import UpstreamIdentity
from tests.unit.fakes import FakeAudit
from tests.unit.test_authorization_flow import ISSUER, META, NOW, Provider, Store, browser_of, flow

TARGET = "/approvals/req_abc?approver=lead%40example.com&d=" + "a" * 64 + "&expires=1800003600&sig=QUJD"


def started(store: Store, audit: FakeAudit, target: str | None = TARGET) -> Redirect | ErrorPage:
    result = flow(store, Provider(UpstreamIdentity("s-1", "Lead@Example.com", True, ())), audit)
    return result.approver_sign_in(target, META)  # type: ignore[no-any-return]


def test_an_approver_is_sent_upstream_with_a_sign_in_that_remembers_the_approval_page() -> None:
    store, audit = Store(), FakeAudit()
    result = started(store, audit)
    assert isinstance(result, Redirect) and result.location.startswith("https://idp.example.com/")
    (sign_in,) = store.sign_ins.values()
    assert sign_in.return_to == TARGET and sign_in.client_id == "" and sign_in.user is None
    assert parse_qs(urlsplit(result.location).query)["state"] == [sign_in.sign_in_id]
    [record] = audit.records
    assert (record.action, record.decision, record.reason) == (
        "authorize.approver_sign_in",
        "allow",
        "sign_in_required",
    )
    assert record.grant_type is None


def test_the_callback_sets_a_session_and_returns_to_the_approval_page_only() -> None:
    store, audit = Store(), FakeAudit()
    provider = Provider(UpstreamIdentity("s-1", "Lead@Example.com", True, ()))
    pages = flow(store, provider, audit)
    browser = browser_of(pages.approver_sign_in(TARGET, META))
    (sign_in,) = store.sign_ins.values()
    back = pages.callback({"state": sign_in.sign_in_id, "code": "c-1", "iss": "x"}, META, browser)
    assert isinstance(back, Redirect) and back.location == ISSUER + TARGET and back.new_session
    session = store.sessions[session_hash(back.new_session)]
    assert session.user == "lead@example.com" and session.expires_at > NOW
    assert store.codes == {} and store.consents == {}
    assert [(r.action, r.reason, r.user) for r in audit.records][-1] == (
        "authorize.approver_sign_in",
        "approver_signed_in",
        "lead@example.com",
    )
    assert len(audit.records) == 2  # one for the start, one for the callback


def test_a_replayed_callback_changes_nothing() -> None:
    store, audit = Store(), FakeAudit()
    pages = flow(store, Provider(), audit)
    browser = browser_of(pages.approver_sign_in(TARGET, META))
    (sign_in,) = store.sign_ins.values()
    pages.callback({"state": sign_in.sign_in_id, "code": "c-1"}, META, browser)
    sessions = dict(store.sessions)
    again = pages.callback({"state": sign_in.sign_in_id, "code": "c-1"}, META, browser)
    assert isinstance(again, ErrorPage) and store.sessions == sessions
    assert audit.records[-1].reason == "unknown_sign_in_state"


def test_a_forged_upstream_response_sets_no_session() -> None:
    store, audit = Store(), FakeAudit()
    pages = flow(store, Provider(), audit)
    browser = browser_of(pages.approver_sign_in(TARGET, META))
    (sign_in,) = store.sign_ins.values()
    result = pages.callback({"state": sign_in.sign_in_id, "code": "forged"}, META, browser)
    assert isinstance(result, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "upstream:id_token:wrong_nonce"


def test_a_cancelled_sign_in_shows_a_page_and_redirects_nowhere() -> None:
    store, audit = Store(), FakeAudit()
    pages = flow(store, Provider(), audit)
    browser = browser_of(pages.approver_sign_in(TARGET, META))
    (sign_in,) = store.sign_ins.values()
    result = pages.callback({"state": sign_in.sign_in_id, "error": "access_denied"}, META, browser)
    assert isinstance(result, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "provider_error:access_denied"


@pytest.mark.parametrize(
    "target",
    [
        None,
        "https://evil.example.com/approvals/req_abc?approver=x",
        "//evil.example.com/approvals/req_abc?approver=x",
        "/approvals/req_abc",  # not a link: no query
        "/approvals/../authorize?client_id=x",
        "/approvals/req_abc?x=1#frag",
        "/approvals/req_abc?x=1\r\nSet-Cookie:a=b",
        "/approvals/req_abc?x=\\evil.example.com",
        "/approvals/req_abc/../../evil?x=1",
        "/authorize/consent?request=abc",
        "/approvals/req_abc?@evil.example.com",
    ],
)
def test_a_forged_return_target_is_refused_and_stores_nothing(target: str | None) -> None:
    store, audit = Store(), FakeAudit()
    result = started(store, audit, target)
    assert isinstance(result, ErrorPage) and result.status == 400
    assert store.sign_ins == {}
    [record] = audit.records
    assert (record.decision, record.reason) == ("deny", "invalid_return_target")


def test_an_approver_sign_in_cannot_be_used_on_the_consent_page() -> None:
    store, audit = Store(), FakeAudit()
    pages = flow(store, Provider(), audit)
    browser = browser_of(pages.approver_sign_in(TARGET, META))
    (sign_in,) = store.sign_ins.values()
    back = pages.callback({"state": sign_in.sign_in_id, "code": "c-1"}, META, browser)
    result = pages.consent_page(sign_in.sign_in_id, back.new_session, META)
    assert isinstance(result, ErrorPage) and audit.records[-1].reason == "unknown_sign_in"
