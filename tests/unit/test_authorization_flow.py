"""The authorization endpoint's flow with in-memory stores: sign-in upstream, consent, code, and the
refusals on the way. Every call writes exactly one audit record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from agent_auth.clock import FixedClock
from agent_auth.oauth.authorize.flow import (
    AuthorizationFlow,
    ConsentPage,
    ErrorPage,
    FlowOutcome,
    Meta,
    Redirect,
)
from agent_auth.oauth.authorize.pkce import challenge_for
from agent_auth.oauth.upstream.relying_party import Callback, UpstreamIdentity, UpstreamRejected
from agent_auth.ports import Write
from agent_auth.records import (
    Agent,
    AuthorizationCode,
    Consent,
    Delegation,
    SignIn,
    UserDirectory,
    UserSession,
)
from tests.unit.fakes import FakeAudit

ISSUER = "https://auth.example.com"
NOW = 1_800_000_000
REDIRECT = "http://127.0.0.1:8765/callback"
CRM = "https://crm.example.com"
META = Meta("r-1", "198.51.100.9")
AGENT = Agent(
    client_id="mcp-client",
    owner="owner@example.com",
    auth_method="none",
    audiences={"crm": CRM},
    descriptions={"crm.read": "Read contacts", "crm.write": "Change contacts"},
    delegation=Delegation(
        redirect_uris=(REDIRECT,),
        scopes=("crm.read", "crm.write"),
        scope_audiences={"crm.read": "crm", "crm.write": "crm"},
    ),
)
USERS = UserDirectory(
    by_email={"alice@example.com": frozenset({"crm.read", "crm.write"})},
    by_group={"support": frozenset({"crm.read"})},
)


class Store:
    """All the flow's stores in one object; writes are closures a transaction runs."""

    def __init__(self) -> None:
        self.sign_ins: dict[str, SignIn] = {}
        self.sessions: dict[str, UserSession] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.consents: dict[tuple[str, str], Consent] = {}

    def get_client(self, client_id: str) -> Agent | None:
        return AGENT if client_id == AGENT.client_id else None

    def get_users(self) -> UserDirectory:
        return USERS

    def put_sign_in(self, sign_in: SignIn) -> None:
        assert sign_in.sign_in_id not in self.sign_ins, "a sign-in is stored once (the adapter refuses)"
        self.sign_ins[sign_in.sign_in_id] = sign_in

    def get_sign_in(self, sign_in_id: str, now: int) -> SignIn | None:
        found = self.sign_ins.get(sign_in_id)
        return found if found is not None and now < found.expires_at else None

    def complete_sign_in(self, sign_in_id: str, user: str, groups: tuple[str, ...], now: int) -> bool:
        found = self.sign_ins.get(sign_in_id)
        if found is None or found.user is not None:
            return False
        self.sign_ins[sign_in_id] = replace(found, user=user, groups=groups)
        return True

    def consume_sign_in(self, sign_in_id: str, now: int) -> Write:
        return Write(lambda: self.sign_ins.pop(sign_in_id, None) is not None)

    def put_session(self, session: UserSession) -> None:
        self.sessions[session.session_hash] = session

    def get_session(self, session_hash: str, now: int) -> UserSession | None:
        return self.sessions.get(session_hash)

    def put_code(self, code: AuthorizationCode) -> Write:
        return Write(lambda: self.codes.setdefault(code.code_hash, code) is code)

    def redeem_code(self, code_hash: str, now: int) -> AuthorizationCode | None:
        raise NotImplementedError

    def get_code(self, code_hash: str) -> AuthorizationCode | None:
        return self.codes.get(code_hash)

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        return self.consents.get((user, client_id))

    def put_consent(self, consent: Consent) -> Write:
        def put() -> bool:
            self.consents[(consent.user, consent.client_id)] = consent
            return True

        return Write(put)

    def list_consents(self, user: str | None = None) -> list[Consent]:
        return list(self.consents.values())

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write:
        raise NotImplementedError

    def commit(self, writes: Sequence[Write]) -> bool:
        return all(w.operation() for w in writes)


class Provider:
    def __init__(self, identity: UpstreamIdentity | None = None) -> None:
        self.identity = identity or UpstreamIdentity("sub-1", "Alice@Example.com", True, ())
        self.calls: list[dict[str, str]] = []

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        return f"https://idp.example.com/authorize?state={state}"

    def callback(self, params: dict[str, str]) -> Callback:
        if params.get("iss") == "https://evil.example.com":
            raise UpstreamRejected("callback:wrong_iss")
        return Callback(state=params["state"], code=params["code"])

    def complete(self, code: str, *, nonce: str, code_verifier: str) -> UpstreamIdentity:
        self.calls.append({"code": code, "nonce": nonce})
        if code == "forged":
            raise UpstreamRejected("id_token:wrong_nonce")
        return self.identity


class Shell:
    """What the browser shell does with a flow outcome: write its record unless the flow's transaction
    already did, and hand on the result."""

    def __init__(self, flow: AuthorizationFlow, audit: FakeAudit) -> None:
        self._flow, self._audit = flow, audit

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._flow, name)

        def call(*args: Any) -> Any:
            outcome: FlowOutcome = method(*args)
            if not outcome.committed:
                self._audit.write(outcome.audit)
            return outcome.result

        return call


def flow(store: Store, provider: Provider | None = None, audit: FakeAudit | None = None) -> Any:
    audit = audit or FakeAudit()
    return Shell(_flow(store, provider, audit), audit)


def _flow(store: Store, provider: Provider | None, audit: FakeAudit) -> AuthorizationFlow:
    return AuthorizationFlow(
        issuer=ISSUER,
        agents=store,
        users=store,
        sign_ins=store,
        sessions=store,
        consents=store,
        codes=store,
        transaction=store,
        upstream=provider or Provider(),
        audit=audit,
        clock=FixedClock(NOW),
    )


def params(**overrides: str | None) -> dict[str, str | None]:
    return {
        "response_type": "code",
        "client_id": "mcp-client",
        "redirect_uri": REDIRECT,
        "state": "client-state",
        "code_challenge": challenge_for("v" * 43),
        "code_challenge_method": "S256",
        "scope": "openid crm.read crm.write",
        **overrides,
    }


def browser_of(started: Redirect) -> str:
    """The value of the cookie the sign-in set in the browser that started it."""
    assert started.sign_in_cookie is not None and started.sign_in_cookie.value
    return started.sign_in_cookie.value


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(
    store: Store, audit: FakeAudit, provider: Provider | None = None, **overrides: str | None
) -> Redirect:
    """GET /authorize without a session, then the provider's callback."""
    the_flow = flow(store, provider, audit)
    started = the_flow.authorize(params(**overrides), frozenset(), None, META)
    assert isinstance(started, Redirect) and started.location.startswith("https://idp.example.com/")
    callback = {"code": "upstream-code", "state": query(started.location)["state"]}
    back = the_flow.callback(callback, META, browser_of(started))
    assert isinstance(back, Redirect)
    return back


def test_the_whole_flow_ends_in_a_code_bound_to_the_request() -> None:
    store, audit = Store(), FakeAudit()
    back = sign_in(store, audit)
    assert back.location.startswith(f"{ISSUER}/authorize/consent?") and back.new_session
    request_id = query(back.location)["request"]
    page = flow(store, audit=audit).consent_page(request_id, back.new_session, META)
    assert isinstance(page, ConsentPage) and page.user == "alice@example.com"
    assert page.redirect_host == "127.0.0.1:8765" and page.audience == CRM
    assert dict(page.scopes)["crm.write"] == "Change contacts"
    done = flow(store, audit=audit).decide(request_id, back.new_session, "allow", META)
    assert isinstance(done, Redirect) and done.location.startswith(REDIRECT + "?")
    answer = query(done.location)
    assert answer["state"] == "client-state" and answer["iss"] == ISSUER and answer["code"].startswith("ac_")
    [code] = store.codes.values()
    assert code.user == "alice@example.com" and code.scopes == ("openid", "crm.read", "crm.write")
    assert code.expires_at == NOW + 60 and code.redirect_uri == REDIRECT
    assert store.consents[("alice@example.com", "mcp-client")].scopes == code.scopes
    assert [r.action for r in audit.records] == [
        "authorize.request",
        "authorize.sign_in",
        "authorize.consent",
        "authorize.consent",
    ]
    assert audit.records[-1].user == "alice@example.com" and audit.records[-1].decision == "allow"


def test_scopes_are_narrowed_to_what_the_user_may_hold() -> None:
    store, audit = Store(), FakeAudit()
    provider = Provider(UpstreamIdentity("s", "bob@example.com", True, ("support",)))
    back = sign_in(store, audit, provider)
    request_id = query(back.location)["request"]
    page = flow(store).consent_page(request_id, back.new_session, META)
    assert isinstance(page, ConsentPage) and [s for s, _ in page.scopes] == ["openid", "crm.read"]


def test_a_user_who_may_hold_none_of_it_is_denied() -> None:
    store, audit = Store(), FakeAudit()
    provider = Provider(UpstreamIdentity("s", "mallory@example.com", True, ()))
    back = sign_in(store, audit, provider)
    assert query(back.location)["error"] == "access_denied" and query(back.location)["iss"] == ISSUER


def test_remembered_consent_skips_the_page_and_prompt_consent_forces_it() -> None:
    store, audit = Store(), FakeAudit()
    back = sign_in(store, audit)
    flow(store).decide(query(back.location)["request"], back.new_session, "allow", META)
    again = flow(store).authorize(params(), frozenset(), back.new_session, META)
    assert isinstance(again, Redirect) and "code" in query(again.location)
    forced = flow(store).authorize(params(prompt="consent"), frozenset(), back.new_session, META)
    assert isinstance(forced, Redirect) and forced.location.startswith(f"{ISSUER}/authorize/consent?")


def test_prompt_none_answers_login_required_or_consent_required() -> None:
    store, audit = Store(), FakeAudit()
    nobody = flow(store).authorize(params(prompt="none"), frozenset(), None, META)
    assert isinstance(nobody, Redirect) and query(nobody.location)["error"] == "login_required"
    back = sign_in(store, audit)
    signed = flow(store).authorize(params(prompt="none"), frozenset(), back.new_session, META)
    assert isinstance(signed, Redirect) and query(signed.location)["error"] == "consent_required"


def test_deny_redirects_access_denied_and_issues_nothing() -> None:
    store, audit = Store(), FakeAudit()
    back = sign_in(store, audit)
    denied = flow(store, audit=audit).decide(query(back.location)["request"], back.new_session, "deny", META)
    assert isinstance(denied, Redirect) and query(denied.location)["error"] == "access_denied"
    assert store.codes == {} and store.consents == {}
    assert audit.records[-1].reason == "user_denied"


@pytest.mark.parametrize(
    "callback",
    [
        {"code": "c", "state": "not-a-sign-in-id-but-long-enough"},
        {"code": "c", "state": "x"},
        {"code": "c"},
    ],
)
def test_a_callback_for_no_sign_in_of_ours_is_an_error_page(callback: dict[str, Any]) -> None:
    audit = FakeAudit()
    assert isinstance(flow(Store(), audit=audit).callback(callback, META), ErrorPage)
    [record] = audit.records
    assert record.decision == "deny" and record.reason == "unknown_sign_in_state"


def test_a_forged_or_replayed_provider_response_signs_nobody_in() -> None:
    store, audit = Store(), FakeAudit()
    the_flow = flow(store, audit=audit)
    started = the_flow.authorize(params(), frozenset(), None, META)
    assert isinstance(started, Redirect)
    state, browser = query(started.location)["state"], browser_of(started)
    assert isinstance(the_flow.callback({"code": "forged", "state": state}, META, browser), ErrorPage)
    assert audit.records[-1].reason == "upstream:id_token:wrong_nonce" and store.sessions == {}
    wrong_iss = {"code": "good", "state": state, "iss": "https://evil.example.com"}
    assert isinstance(the_flow.callback(wrong_iss, META, browser), ErrorPage)
    assert audit.records[-1].reason == "upstream:callback:wrong_iss" and store.sessions == {}
    assert isinstance(the_flow.callback({"code": "good", "state": state}, META, browser), Redirect)
    replayed = the_flow.callback({"code": "good", "state": state}, META, browser)
    assert isinstance(replayed, ErrorPage) and len(store.sessions) == 1


def test_the_consent_page_belongs_to_the_browser_that_signed_in() -> None:
    store, audit = Store(), FakeAudit()
    back = sign_in(store, audit)
    request_id = query(back.location)["request"]
    for cookie in (None, "another-browser"):
        assert isinstance(flow(store).consent_page(request_id, cookie, META), ErrorPage)
        assert isinstance(flow(store).decide(request_id, cookie, "allow", META), ErrorPage)
    assert store.codes == {}


def test_a_consent_decides_once() -> None:
    store, audit = Store(), FakeAudit()
    back = sign_in(store, audit)
    request_id = query(back.location)["request"]
    assert isinstance(flow(store).decide(request_id, back.new_session, "allow", META), Redirect)
    assert isinstance(flow(store).decide(request_id, back.new_session, "allow", META), ErrorPage)
    assert len(store.codes) == 1


def test_a_provider_error_goes_back_to_the_client_as_access_denied() -> None:
    store, audit = Store(), FakeAudit()
    the_flow = flow(store, audit=audit)
    started = the_flow.authorize(params(), frozenset(), None, META)
    assert isinstance(started, Redirect)
    cancelled = {"error": "access_denied", "state": query(started.location)["state"]}
    back = the_flow.callback(cancelled, META, browser_of(started))
    assert isinstance(back, Redirect) and query(back.location)["error"] == "access_denied"
    assert query(back.location)["state"] == "client-state"


@pytest.mark.parametrize(
    ("error", "recorded"),
    [("access_denied", "provider_error:access_denied"), ("Call +1 555 0100 now", None)],
)
def test_a_provider_error_is_audited_as_sent_only_when_it_is_a_known_code(
    error: str, recorded: str | None
) -> None:
    # Anyone who starts a sign-in can type any `error` into its callback URL before the provider
    # vouched for anything: only a code of RFC 6749 §4.1.2.1 / OpenID Connect is kept as sent
    store, audit = Store(), FakeAudit()
    the_flow = flow(store, audit=audit)
    started = the_flow.authorize(params(), frozenset(), None, META)
    assert isinstance(started, Redirect)
    the_flow.callback({"error": error, "state": query(started.location)["state"]}, META, browser_of(started))
    reason = str(audit.records[-1].reason)
    if recorded is not None:
        assert reason == recorded
    else:
        assert reason.startswith("provider_error:") and "555" not in reason


def test_invalid_requests_write_one_record_each() -> None:
    audit = FakeAudit()
    page = flow(Store(), audit=audit).authorize(
        params(redirect_uri="https://evil.example.com"), frozenset(), None, META
    )
    assert isinstance(page, ErrorPage)
    redirect = flow(Store(), audit=audit).authorize(
        params(code_challenge_method="plain"), frozenset(), None, META
    )
    assert isinstance(redirect, Redirect) and query(redirect.location)["error"] == "invalid_request"
    assert [r.reason for r in audit.records] == ["redirect_uri_not_registered", "pkce_s256_required"]
