"""Login CSRF (RFC 9700 §4.7.1; OpenID Connect Core §3.1.2.1): an upstream sign-in completes only in the
browser that started it. Each sign-in sets a cookie of its own whose hash the SignIn keeps; a callback
without it is refused with one record and ends the sign-in, so the same URL fails everywhere after.
Also the kill switch at /authorize: a disabled agent starts nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent_auth.audit import AuditRecord
from agent_auth.handlers.authorize import _Pages, sign_in_policy
from agent_auth.oauth.authorize.flow import (
    SIGN_IN_SECONDS,
    ConsentPage,
    ErrorPage,
    FlowOutcome,
    Redirect,
    SignInCookie,
)
from agent_auth.oauth.authorize.stores import sign_in_cookie_name
from agent_auth.oauth.tokens import opaque
from agent_auth.records import Agent
from tests.unit.fakes import FakeAudit
from tests.unit.test_approver_sign_in_flow import TARGET
from tests.unit.test_authorization_flow import (
    AGENT,
    META,
    Provider,
    Store,
    browser_of,
    flow,
    params,
    query,
)


class DisablingStore(Store):
    """The agents table as the kill switch leaves it: `agent` may be swapped for its disabled self."""

    agent: Agent = AGENT

    def get_client(self, client_id: str) -> Agent | None:
        return self.agent if client_id == self.agent.client_id else None


def started(store: Store, audit: FakeAudit, provider: Provider | None = None) -> Redirect:
    result = flow(store, provider, audit).authorize(params(), frozenset(), None, META)
    assert isinstance(result, Redirect)
    return result  # type: ignore[no-any-return]


def callback_of(redirect: Redirect) -> dict[str, str | None]:
    return {"code": "upstream-code", "state": query(redirect.location)["state"]}


# --- the cookie ---------------------------------------------------------------------------------------


def test_starting_a_sign_in_sets_a_cookie_whose_hash_the_sign_in_keeps() -> None:
    store, audit = Store(), FakeAudit()
    redirect = started(store, audit)
    (sign_in,) = store.sign_ins.values()
    cookie = redirect.sign_in_cookie
    assert cookie is not None and cookie.sign_in_id == sign_in.sign_in_id == query(redirect.location)["state"]
    assert cookie.value and len(cookie.value) >= 43  # 256 random bits
    assert sign_in.browser_hash == opaque.digest(cookie.value) != cookie.value
    assert cookie.value not in redirect.location and cookie.value not in repr(redirect)


def test_an_approver_sign_in_sets_one_too() -> None:
    store, audit = Store(), FakeAudit()
    redirect = flow(store, Provider(), audit).approver_sign_in(TARGET, META)
    (sign_in,) = store.sign_ins.values()
    assert sign_in.browser_hash == opaque.digest(browser_of(redirect))


def test_a_user_with_a_session_starts_no_upstream_sign_in_and_gets_no_cookie() -> None:
    store, audit = Store(), FakeAudit()
    first = started(store, audit)
    back = flow(store, audit=audit).callback(callback_of(first), META, browser_of(first))
    again = flow(store, audit=audit).authorize(params(), frozenset(), back.new_session, META)
    assert isinstance(again, Redirect) and again.sign_in_cookie is None


# --- the callback from another browser ----------------------------------------------------------------


@pytest.mark.parametrize("browser", [None, "", "a-cookie-of-another-sign-in-or-made-up-by-hand"])
def test_a_callback_from_another_browser_signs_nobody_in_and_ends_the_sign_in(browser: str | None) -> None:
    store, audit, provider = Store(), FakeAudit(), Provider()
    redirect = started(store, audit, provider)
    (sign_in,) = store.sign_ins.values()
    result = flow(store, provider, audit).callback(callback_of(redirect), META, browser)
    assert isinstance(result, ErrorPage) and result.status == 400
    assert "not started here" in result.message
    assert store.sessions == {} and store.sign_ins == {} and store.codes == {}
    assert provider.calls == []  # the provider's code was never redeemed
    record = audit.records[-1]
    assert (record.action, record.decision, record.reason) == (
        "authorize.sign_in",
        "deny",
        "sign_in_not_from_this_browser",
    )
    assert record.client_id == "mcp-client" and record.user is None
    assert len(audit.records) == 2  # the start, and this one
    # The browser that started it cannot use the URL afterwards either.
    replayed = flow(store, provider, audit).callback(callback_of(redirect), META, browser_of(redirect))
    assert isinstance(replayed, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "unknown_sign_in_state"
    assert sign_in.browser_hash  # it had one: the refusal was the mismatch


def test_a_provider_error_from_another_browser_is_refused_too() -> None:
    store, audit = Store(), FakeAudit()
    redirect = started(store, audit)
    cancelled = {"error": "access_denied", "state": query(redirect.location)["state"]}
    result = flow(store, audit=audit).callback(cancelled, META, None)
    assert isinstance(result, ErrorPage) and store.sign_ins == {}
    assert audit.records[-1].reason == "sign_in_not_from_this_browser"


def test_an_approver_callback_from_another_browser_sets_no_session() -> None:
    store, audit, provider = Store(), FakeAudit(), Provider()
    redirect = flow(store, provider, audit).approver_sign_in(TARGET, META)
    state = query(redirect.location)["state"]
    result = flow(store, provider, audit).callback({"code": "c-1", "state": state}, META, "other")
    assert isinstance(result, ErrorPage) and store.sessions == {} and store.sign_ins == {}
    assert provider.calls == []
    record = audit.records[-1]
    assert (record.action, record.reason) == ("authorize.approver_sign_in", "sign_in_not_from_this_browser")
    again = flow(store, provider, audit).callback({"code": "c-1", "state": state}, META, browser_of(redirect))
    assert isinstance(again, ErrorPage) and store.sessions == {}


def test_a_sign_in_stored_without_a_browser_hash_never_completes() -> None:
    store, audit = Store(), FakeAudit()
    redirect = started(store, audit)
    (sign_in,) = store.sign_ins.values()
    store.sign_ins[sign_in.sign_in_id] = replace(sign_in, browser_hash="")
    result = flow(store, audit=audit).callback(callback_of(redirect), META, browser_of(redirect))
    assert isinstance(result, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "sign_in_not_from_this_browser"


def test_a_callback_that_ends_its_sign_in_clears_its_cookie_whatever_happened() -> None:
    store, audit = Store(), FakeAudit()
    redirect = started(store, audit)
    state = query(redirect.location)["state"]
    forged = flow(store, audit=audit).callback({"code": "forged", "state": state}, META, browser_of(redirect))
    assert isinstance(forged, ErrorPage) and forged.sign_in_cookie == SignInCookie(state)
    fresh = started(store, audit)
    done = flow(store, audit=audit).callback(callback_of(fresh), META, browser_of(fresh))
    assert isinstance(done, Redirect) and done.new_session
    assert done.sign_in_cookie == SignInCookie(query(fresh.location)["state"])  # value None: cleared
    unknown = flow(store, audit=audit).callback({"code": "c", "state": "x" * 32}, META, None)
    assert isinstance(unknown, ErrorPage) and unknown.sign_in_cookie is None  # not ours to clear


# --- parallel tabs --------------------------------------------------------------------------------------


def test_sign_ins_started_in_parallel_tabs_each_complete_with_their_own_cookie() -> None:
    store, audit = Store(), FakeAudit()
    first, second = started(store, audit), started(store, audit)
    assert first.sign_in_cookie and second.sign_in_cookie
    names = {sign_in_cookie_name(r.sign_in_cookie.sign_in_id) for r in (first, second)}  # type: ignore[union-attr]
    assert len(names) == 2  # two cookies, neither overwrites the other
    # Each tab's cookie works for its own sign-in only (the second finishes first).
    done = flow(store, audit=audit).callback(callback_of(second), META, browser_of(second))
    assert isinstance(done, Redirect) and done.new_session
    other = flow(store, audit=audit).callback(callback_of(first), META, browser_of(first))
    assert isinstance(other, Redirect) and other.new_session and len(store.sessions) == 2


def test_one_tabs_cookie_does_not_complete_another_tabs_sign_in() -> None:
    store, audit = Store(), FakeAudit()
    first, second = started(store, audit), started(store, audit)
    crossed = flow(store, audit=audit).callback(callback_of(first), META, browser_of(second))
    assert isinstance(crossed, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "sign_in_not_from_this_browser"


# --- the kill switch ------------------------------------------------------------------------------------


def test_a_disabled_agent_cannot_start_authorize() -> None:
    store, audit = DisablingStore(), FakeAudit()
    store.agent = replace(AGENT, disabled=True)
    result = flow(store, audit=audit).authorize(params(), frozenset(), None, META)
    assert isinstance(result, ErrorPage) and result.status == 400 and "disabled" in result.message
    assert store.sign_ins == {} and store.codes == {}
    [record] = audit.records
    assert (record.action, record.decision, record.reason, record.client_id) == (
        "authorize.request",
        "deny",
        "agent_disabled",
        "mcp-client",
    )


def test_a_disabled_agent_gets_no_code_from_a_session_or_a_remembered_consent() -> None:
    store, audit = DisablingStore(), FakeAudit()
    first = started(store, audit)
    back = flow(store, audit=audit).callback(callback_of(first), META, browser_of(first))
    flow(store, audit=audit).decide(query(back.location)["request"], back.new_session, "allow", META)
    codes = dict(store.codes)
    store.agent = replace(AGENT, disabled=True)
    again = flow(store, audit=audit).authorize(params(), frozenset(), back.new_session, META)
    assert isinstance(again, ErrorPage) and store.codes == codes
    assert audit.records[-1].reason == "agent_disabled"


def test_an_agent_disabled_during_the_sign_in_gets_no_consent_and_no_code() -> None:
    store, audit = DisablingStore(), FakeAudit()
    redirect = started(store, audit)
    store.agent = replace(AGENT, disabled=True)
    result = flow(store, audit=audit).callback(callback_of(redirect), META, browser_of(redirect))
    assert isinstance(result, ErrorPage) and store.sessions == {}
    assert audit.records[-1].reason == "agent_disabled"
    store.agent = AGENT
    fresh = started(store, audit)
    back = flow(store, audit=audit).callback(callback_of(fresh), META, browser_of(fresh))
    request_id = query(back.location)["request"]
    assert isinstance(flow(store).consent_page(request_id, back.new_session, META), ConsentPage)
    store.agent = replace(AGENT, disabled=True)
    assert isinstance(flow(store, audit=audit).consent_page(request_id, back.new_session, META), ErrorPage)
    assert audit.records[-1].reason == "agent_disabled"
    decided = flow(store, audit=audit).decide(request_id, back.new_session, "allow", META)
    assert isinstance(decided, ErrorPage) and store.codes == {}


# --- how the cookie reaches the browser (handlers/authorize.py) --------------------------------------------


def respond(result: Redirect | ErrorPage, *, secure: bool) -> object:
    outcome = FlowOutcome(result, AuditRecord(action="authorize.sign_in", decision="allow", at=0))
    return _Pages(flow=None, secure=secure).respond(outcome)  # type: ignore[arg-type]


@pytest.mark.parametrize(("secure", "prefix"), [(True, "__Host-"), (False, "")])
def test_the_sign_in_cookie_has_the_session_cookies_flags(secure: bool, prefix: str) -> None:
    sign_in_id = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    redirect = Redirect("https://idp.example.com/authorize", sign_in_cookie=SignInCookie(sign_in_id, "v4lue"))
    outcome = respond(redirect, secure=secure)
    cookie = outcome.set_cookie  # type: ignore[attr-defined]
    assert cookie.startswith(f"{prefix}agent-auth-sign-in-AbCdEfGhIjKl=v4lue; Path=/")
    flags = set(cookie.split("; ")[1:])
    assert {"Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={SIGN_IN_SECONDS}"} <= flags
    assert ("Secure" in flags) is secure and not any(f.startswith("Domain") for f in flags)
    assert sign_in_policy(sign_in_id).cookie_name(secure) == f"{prefix}agent-auth-sign-in-AbCdEfGhIjKl"


def test_the_callback_sets_the_session_and_clears_the_sign_in_cookie() -> None:
    sign_in_id = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    redirect = Redirect(
        "https://as/authorize/consent", new_session="s3", sign_in_cookie=SignInCookie(sign_in_id)
    )
    outcome = respond(redirect, secure=True)
    assert outcome.set_cookie.startswith("__Host-agent-auth-session=s3; ")  # type: ignore[attr-defined]
    [cleared] = outcome.more_cookies  # type: ignore[attr-defined]
    assert cleared.startswith("__Host-agent-auth-sign-in-AbCdEfGhIjKl=; Path=/")
    assert cleared.endswith("; Max-Age=0") and "Secure" in cleared
    refused = respond(ErrorPage(400, "t", "m", SignInCookie(sign_in_id)), secure=True)
    assert refused.set_cookie.endswith("; Max-Age=0")  # type: ignore[attr-defined]
    assert refused.more_cookies == ()  # type: ignore[attr-defined]
