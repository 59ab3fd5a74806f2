"""The just-in-time rules with in-memory stores: asking (jit/requests.py), which JIT grants a token may
draw on (jit/grants.py), and polling for the answer (jit/polling.py, CIBA poll mode §7.3, §11).

The moto tier checks the same flows end to end; here each rule is one fast case.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest

from agent_auth.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidTarget,
    PollAccessDenied,
    SlowDown,
    TemporarilyUnavailable,
)
from agent_auth.jit.grants import JitGrants, consume_single_use, still_allowed, usable_grants
from agent_auth.jit.polling import ACCESS_REQUEST_GRANT, AccessRequestGrant
from agent_auth.jit.requests import (
    PENDING_SECONDS,
    POLL_INTERVAL,
    AccessRequestOperation,
    request_digest,
    requested_duration,
    rule_for,
)
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.grant_types.registry import TokenContext
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.ports import Signer
from agent_auth.records import AccessRequest, Agent, JitGrant, JitRule
from tests.unit.fakes import FakeGrants, FakeJitWrites, FakeRequests, FakeTransaction, LocalSigner

NOW = 1_800_000_000
ISSUER = "https://auth.example.com"
CRM = "https://crm.example.com"
BILLING = "https://billing.example.com"

ASK_LEADS = JitRule(
    scopes=("crm.write",), audience="crm", approvers="leads", auto=False, max_duration=3600, single_use=False
)
AUTO_ONCE = JitRule(
    scopes=("crm.write", "crm.export"),
    audience="crm",
    approvers=None,
    auto=True,
    max_duration=1800,
    single_use=True,
)
BILLING_RULE = JitRule(
    scopes=("billing.refund",),
    audience="billing",
    approvers="finance",
    auto=False,
    max_duration=600,
    single_use=False,
)
AGENT = Agent(
    client_id="bot",
    owner="owner@example.com",
    auth_method="client_secret_basic",
    scopes={"crm.read": "crm"},
    audiences={"crm": CRM, "billing": BILLING},
    jit=(ASK_LEADS, AUTO_ONCE, BILLING_RULE),
    descriptions={"crm.write": "Change contacts", "crm.export": "Export contacts"},
)


def form(**fields: str | list[str]) -> Form:
    return Form({k: v if isinstance(v, list) else [v] for k, v in fields.items()})


def client(agent: Agent = AGENT) -> AuthenticatedClient:
    return AuthenticatedClient(client_id=agent.client_id, method=agent.auth_method, agent=agent)


def operation(transaction: FakeTransaction | None = None) -> AccessRequestOperation:
    writes, transaction = FakeJitWrites(), transaction or FakeTransaction()
    return AccessRequestOperation(requests=writes, grants=writes, transaction=transaction)


def pending_request(**changes: Any) -> AccessRequest:
    request = AccessRequest(
        request_id="req_1",
        client_id="bot",
        owner="owner@example.com",
        scopes=("crm.write",),
        audience="crm",
        audience_uri=CRM,
        reason="Merge duplicate contacts (ticket 4821)",
        duration=1800,
        single_use=False,
        approvers="leads",
        status="pending",
        created_at=NOW,
        expires_at=NOW + PENDING_SECONDS,
    )
    return replace(request, **changes)


def grant(**changes: Any) -> JitGrant:
    made = JitGrant(
        grant_id="req_1",
        client_id="bot",
        scopes=("crm.write",),
        audience="crm",
        audience_uri=CRM,
        starts_at=NOW,
        ends_at=NOW + 1800,
        request_id="req_1",
        approved_by="lead@example.com",
    )
    return replace(made, **changes)


# --- Which rule answers a request -------------------------------------------------------------------


def test_the_first_rule_that_covers_the_scopes_is_chosen() -> None:
    # Given two rules that both cover crm.write, the one asking the leads first
    # When the agent asks for crm.write / Then the first rule decides
    assert rule_for(AGENT, ["crm.write"], None) is ASK_LEADS
    # And a request the first rule does not cover falls to the next that does
    assert rule_for(AGENT, ["crm.write", "crm.export"], None) is AUTO_ONCE


def test_a_named_resource_selects_the_rule_of_that_audience() -> None:
    # Given rules for two audiences
    # When the agent names the billing resource / Then only a billing rule may answer
    assert rule_for(AGENT, ["billing.refund"], BILLING) is BILLING_RULE
    assert rule_for(AGENT, ["crm.write"], CRM) is ASK_LEADS
    # And a crm scope asked for at the billing resource has no rule
    with pytest.raises(AccessDenied) as caught:
        rule_for(AGENT, ["crm.write"], BILLING)
    assert caught.value.reason == "no_jit_rule"


def test_a_resource_the_agent_cannot_reach_is_an_invalid_target() -> None:
    with pytest.raises(InvalidTarget) as caught:
        rule_for(AGENT, ["crm.write"], "https://elsewhere.example.com")
    assert caught.value.reason == "resource_not_allowed"


def test_no_rule_means_access_denied() -> None:
    # Given scopes no rule covers (standing access is not requestable either)
    for scopes in (["crm.delete"], ["crm.read"], ["crm.write", "billing.refund"]):
        # When asked / Then refused
        with pytest.raises(AccessDenied) as caught:
            rule_for(AGENT, scopes, None)
        assert caught.value.reason == "no_jit_rule"


def test_never_wins_over_every_rule() -> None:
    # Given an agent whose rule covers crm.write, but crm.write is also in `never`
    agent = replace(AGENT, never=frozenset({"crm.write"}))
    transaction = FakeTransaction()
    # When it asks for crm.write
    with pytest.raises(AccessDenied) as caught:
        operation(transaction).perform(client(agent), form(scope="crm.write", reason="r"), NOW)
    # Then it is refused as never grantable, and nothing is written
    assert caught.value.reason == "never" and transaction.commits == []


# --- How long the access may last -------------------------------------------------------------------


def test_the_duration_defaults_to_the_rules_maximum() -> None:
    assert requested_duration(None, ASK_LEADS) == 3600


@pytest.mark.parametrize(("raw", "seconds"), [("60", 60), ("1800", 1800), ("3600", 3600), ("0600", 600)])
def test_a_duration_within_bounds_is_taken_as_given(raw: str, seconds: int) -> None:
    assert requested_duration(raw, ASK_LEADS) == seconds


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("59", "duration_too_short"),
        ("0", "duration_too_short"),
        ("3601", "duration_beyond_max"),
        ("999999999", "duration_beyond_max"),
        ("1h", "bad_duration"),
        ("-60", "bad_duration"),
        ("", "bad_duration"),
        (" 60", "bad_duration"),
        ("6e2", "bad_duration"),
        ("1234567890", "bad_duration"),
        ("\u0666\u0660", "bad_duration"),  # Arabic-Indic digits, which int() would accept
    ],
)
def test_a_duration_out_of_bounds_or_malformed_is_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        requested_duration(raw, ASK_LEADS)
    assert caught.value.reason == reason


# --- What the approver signs off on -----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "other-bot"},
        {"scopes": ("crm.export",)},
        {"scopes": ("crm.export", "crm.write")},
        {"audience": "billing"},
        {"duration": 1801},
        {"reason": "Merge duplicate contacts (ticket 4822)"},
        {"request_id": "req_2"},
    ],
)
def test_any_change_to_what_the_approver_sees_changes_the_digest(change: dict[str, Any]) -> None:
    assert request_digest(pending_request(**change)) != request_digest(pending_request())


def test_the_decision_and_bookkeeping_do_not_change_the_digest() -> None:
    # The link signed for a pending request stays bound to the same digest once it is decided.
    request = pending_request()
    decided = replace(request.decided("approved", "lead@example.com", NOW + 60), created_at=NOW + 1)
    assert request_digest(decided) == request_digest(request)


# --- Asking: POST /access-requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"reason": "r"}, "missing_scope"),
        ({"scope": "crm.write"}, "missing_reason"),
        ({"scope": "crm.write", "reason": "   "}, "missing_reason"),
        ({"scope": "crm.write", "reason": "x" * 501}, "reason_too_long"),
        ({"scope": "crm.write", "reason": "ok\r\nBcc: all@example.com"}, "reason_control_characters"),
        ({"scope": "crm.write", "reason": "ok\u202egnp.exe"}, "reason_control_characters"),
    ],
)
def test_a_request_needs_a_scope_and_a_clean_reason(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        operation().validate(form(**fields))
    assert caught.value.reason == reason


def test_a_request_for_an_approver_rule_is_stored_pending_with_its_digest() -> None:
    # Given an agent whose first crm.write rule asks the leads
    transaction = FakeTransaction()
    # When it asks for crm.write for 30 minutes
    outcome = operation(transaction).perform(
        client(), form(scope="crm.write", reason="  Merge contacts  ", duration="1800"), NOW
    )
    # Then the answer is 202 with the id to poll, the wait and the interval
    assert outcome.status == 202
    assert outcome.response["status"] == "pending"
    assert outcome.response["expires_in"] == PENDING_SECONDS and outcome.response["interval"] == POLL_INTERVAL
    # And one commit wrote exactly the request, bound to what the approver will see
    [[request]] = transaction.commits
    assert isinstance(request, AccessRequest) and request.request_id == outcome.response["request_id"]
    assert request.status == "pending" and request.approvers == "leads" and request.decided_by is None
    assert request.scopes == ("crm.write",) and request.audience_uri == CRM and request.duration == 1800
    assert request.reason == "Merge contacts" and request.descriptions == {"crm.write": "Change contacts"}
    assert request.expires_at == NOW + PENDING_SECONDS
    assert request.digest == request_digest(request)
    # And the audit details name the request, never the reason
    assert outcome.details == {"access_request": request.request_id, "status": "pending", "duration": 1800}


def test_each_request_gets_its_own_unguessable_id() -> None:
    ids = {
        operation().perform(client(), form(scope="crm.write", reason="r"), NOW).response["request_id"]
        for _ in range(20)
    }
    assert len(ids) == 20 and all(str(i).startswith("req_") and len(str(i)) >= 20 for i in ids)


def test_auto_approval_writes_the_grant_in_the_same_commit() -> None:
    # Given a rule that approves crm.write + crm.export at once, single use, for at most 30 minutes
    transaction = FakeTransaction()
    # When the agent asks for both, naming the crm resource and no duration
    outcome = operation(transaction).perform(
        client(), form(scope="crm.export crm.write", reason="Nightly export", resource=CRM), NOW
    )
    # Then it is approved at once (200)
    assert outcome.status == 200 and outcome.response["status"] == "approved"
    # And one commit holds both the approved request and its grant: never a grant without its request
    [[request, made]] = transaction.commits
    assert isinstance(request, AccessRequest) and isinstance(made, JitGrant)
    assert request.status == "approved" and request.decided_by == "auto" and request.decided_at == NOW
    assert made.grant_id == made.request_id == request.request_id
    assert made.scopes == ("crm.export", "crm.write") and made.audience_uri == CRM
    assert made.starts_at == NOW and made.ends_at == NOW + 1800
    assert made.single_use and made.approved_by == "auto"
    assert outcome.scope == "crm.export crm.write" and outcome.audience == CRM


@pytest.mark.parametrize("scope", ["crm.write", "crm.export crm.write"])
def test_a_failed_commit_is_temporarily_unavailable(scope: str) -> None:
    # Given a transaction whose condition fails (an id collision: something is badly wrong)
    transaction = FakeTransaction(succeed=False)
    # When a request, pending or auto-approved, is committed / Then it is refused, not reported as made
    with pytest.raises(TemporarilyUnavailable) as caught:
        operation(transaction).perform(client(), form(scope=scope, reason="r"), NOW)
    assert caught.value.reason == "request_id_collision" and len(transaction.commits) == 1


def test_a_request_names_at_most_one_resource() -> None:
    transaction = FakeTransaction()
    with pytest.raises(InvalidTarget) as caught:
        operation(transaction).perform(
            client(), form(scope="crm.write", reason="r", resource=[CRM, BILLING]), NOW
        )
    assert caught.value.reason == "several_resources" and transaction.commits == []


def test_a_duration_beyond_the_rule_is_refused_before_anything_is_written() -> None:
    transaction = FakeTransaction()
    with pytest.raises(InvalidRequest) as caught:
        operation(transaction).perform(client(), form(scope="crm.write", reason="r", duration="3601"), NOW)
    assert caught.value.reason == "duration_beyond_max" and transaction.commits == []


# --- Which JIT grants a token may draw on -----------------------------------------------------------


def test_usable_grants_are_the_current_ones_the_policy_still_allows() -> None:
    # Given grants in every state
    current = grant(grant_id="current")
    store = FakeGrants(
        current,
        grant(grant_id="ended", ends_at=NOW),
        grant(grant_id="future", starts_at=NOW + 1),
        grant(grant_id="revoked", revoked=True),
        grant(grant_id="consumed", consumed=True),
        grant(grant_id="unrequestable", scopes=("crm.delete",)),
        grant(grant_id="unreachable", audience="legacy"),
        grant(grant_id="other-agent", client_id="other-bot"),
    )
    # When a token for the agent looks for grants now / Then only the current, allowed one serves
    assert usable_grants(store, AGENT, NOW) == [current]
    assert JitGrants(store).usable(AGENT, NOW) == [current]


def test_a_policy_change_ends_grants_it_no_longer_allows() -> None:
    # Given a grant of crm.write to the crm audience, allowed today
    assert still_allowed(AGENT, ["crm.write"], "crm")
    # When an operator adds the scope to never, removes the rules, or the audience goes away
    never = replace(AGENT, never=frozenset({"crm.write"}))
    no_rules = replace(AGENT, jit=(BILLING_RULE,))
    no_audience = replace(AGENT, audiences={"billing": BILLING})
    # Then the grant no longer serves
    assert not still_allowed(never, ["crm.write"], "crm")
    assert not still_allowed(no_rules, ["crm.write"], "crm")
    assert not still_allowed(no_audience, ["crm.write"], "crm")
    assert usable_grants(FakeGrants(grant()), never, NOW) == []


def test_single_use_grants_are_consumed_once_and_others_not_at_all() -> None:
    # Given a single-use grant and an ordinary one
    once, many = grant(grant_id="once", single_use=True), grant(grant_id="many")
    store = FakeGrants(once, many)
    # When a token draws on both
    consume_single_use(store, [once, many], NOW)
    # Then only the single-use one was consumed
    assert store.events == ["consume once"]
    assert store.grants[("bot", "once")].consumed and not store.grants[("bot", "many")].consumed
    # And drawing on it again fails
    with pytest.raises(InvalidGrant) as caught:
        JitGrants(store).consume_single_use([once], NOW)
    assert caught.value.reason == "single_use_grant_consumed"


# --- Polling: grant_type=urn:agent-auth:grant-type:access-request -----------------------------------


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner()


class RecordingSigner:
    """A signer noting each signature in a shared event list, or failing as KMS can."""

    def __init__(self, inner: LocalSigner, events: list[str], fail: bool = False) -> None:
        self.alg, self.kid = inner.alg, inner.kid
        self._inner = inner
        self.events = events
        self.fail = fail

    def sign(self, signing_input: bytes) -> bytes:
        self.events.append("sign")
        if self.fail:
            raise TimeoutError("KMS did not answer")
        return self._inner.sign(signing_input)


def poll_grant(requests: FakeRequests, grants: FakeGrants, signer: Signer) -> AccessRequestGrant:
    return AccessRequestGrant(TokenIssuer(issuer=ISSUER, signer=signer, lifetime=3600), requests, grants)


def poll(request_id: str | None = "req_1", now: int = NOW, agent: Agent = AGENT) -> TokenContext:
    fields = {"grant_type": ACCESS_REQUEST_GRANT}
    if request_id is not None:
        fields["request_id"] = request_id
    return TokenContext(client=client(agent), form=form(**fields), now=now)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_polling_a_pending_request_says_pending_and_slow_down_when_too_fast(signer: LocalSigner) -> None:
    # Given a pending request
    grant_type = poll_grant(FakeRequests(pending_request()), FakeGrants(), signer)
    # When the agent polls / Then it is told to wait
    with pytest.raises(AuthorizationPending):
        grant_type.validate(poll(now=NOW))
    # And polling again inside the interval is slow_down
    with pytest.raises(SlowDown):
        grant_type.validate(poll(now=NOW + POLL_INTERVAL - 1))
    # And once the interval has passed since the last poll, pending again
    with pytest.raises(AuthorizationPending):
        grant_type.validate(poll(now=NOW + 2 * POLL_INTERVAL))


def test_a_request_nobody_decided_in_time_is_expired(signer: LocalSigner) -> None:
    grant_type = poll_grant(FakeRequests(pending_request()), FakeGrants(), signer)
    with pytest.raises(ExpiredToken) as caught:
        grant_type.validate(poll(now=NOW + PENDING_SECONDS))
    assert caught.value.reason == "request_expired"


def test_a_denied_request_is_access_denied_with_a_400(signer: LocalSigner) -> None:
    denied = pending_request().decided("denied", "lead@example.com", NOW + 10)
    grant_type = poll_grant(FakeRequests(denied), FakeGrants(), signer)
    with pytest.raises(PollAccessDenied) as caught:
        grant_type.validate(poll(now=NOW + 20))
    assert caught.value.status == 400 and caught.value.error == "access_denied"


def test_another_agents_request_looks_like_an_unknown_one(signer: LocalSigner) -> None:
    # Given an approved request of another agent, with its grant
    theirs = replace(pending_request(), client_id="other-bot").decided("approved", "lead@example.com", NOW)
    requests = FakeRequests(theirs)
    grant_type = poll_grant(requests, FakeGrants(grant(client_id="other-bot")), signer)
    # When this agent polls its id, an unknown id, or an absurdly long one
    reasons = []
    for request_id in ("req_1", "req_unknown", "req_" + "x" * 100):
        with pytest.raises(InvalidGrant) as caught:
            grant_type.validate(poll(request_id, now=NOW + 60))
        reasons.append(caught.value.reason)
    # Then each is the same invalid_grant, and the long one was not even looked up
    assert reasons == ["unknown_or_foreign_request"] * 3
    assert requests.reads == ["req_1", "req_unknown"]


def test_polling_needs_a_request_id(signer: LocalSigner) -> None:
    with pytest.raises(InvalidRequest) as caught:
        poll_grant(FakeRequests(), FakeGrants(), signer).validate(poll(None))
    assert caught.value.reason == "missing_request_id"


@pytest.mark.parametrize(
    "stored",
    [
        None,
        grant(ends_at=NOW + 60),
        grant(revoked=True),
        grant(consumed=True, single_use=True),
    ],
    ids=["missing", "ended", "revoked", "consumed"],
)
def test_an_approved_request_whose_grant_has_ended_issues_nothing(
    stored: JitGrant | None, signer: LocalSigner
) -> None:
    approved = pending_request().decided("approved", "lead@example.com", NOW)
    grant_type = poll_grant(FakeRequests(approved), FakeGrants(*([stored] if stored else [])), signer)
    with pytest.raises(InvalidGrant) as caught:
        grant_type.validate(poll(now=NOW + 60))
    assert caught.value.reason == "grant_ended"


def test_a_grant_the_policy_no_longer_allows_issues_nothing(signer: LocalSigner) -> None:
    # Given an approved, current grant, then an operator adds its scope to never
    approved = pending_request().decided("approved", "lead@example.com", NOW)
    grant_type = poll_grant(FakeRequests(approved), FakeGrants(grant()), signer)
    agent = replace(AGENT, never=frozenset({"crm.write"}))
    # When the agent polls / Then the grant no longer serves
    with pytest.raises(InvalidGrant) as caught:
        grant_type.validate(poll(now=NOW + 60, agent=agent))
    assert caught.value.reason == "grant_no_longer_allowed"


def test_an_approved_request_issues_a_token_that_ends_with_its_grant(signer: LocalSigner) -> None:
    # Given an approved request whose grant ends in 30 minutes (the issuer's lifetime is an hour)
    approved = pending_request().decided("approved", "lead@example.com", NOW)
    grant_type = poll_grant(FakeRequests(approved), FakeGrants(grant()), signer)
    context = poll(now=NOW + 600)
    # When the agent polls
    issuance = grant_type.validate(context)
    issued = grant_type.issue(context, issuance)
    # Then the token is for the grant's scopes and audience, and never outlives the grant
    token = claims(issued.token)
    assert token["aud"] == CRM and token["scope"] == "crm.write" and token["sub"] == "bot"
    assert token["exp"] == NOW + 1800 and issued.expires_in == 1200
    assert token["access_request"] == "req_1" and token["approved_by"] == "lead@example.com"
    assert issuance.details == {"access_request": "req_1", "grant_ends_at": NOW + 1800}


def test_a_single_use_grant_is_consumed_only_after_signing(signer: LocalSigner) -> None:
    # Given an approved single-use grant
    events: list[str] = []
    approved = pending_request(single_use=True).decided("approved", "auto", NOW)
    grants = FakeGrants(grant(single_use=True), events=events)
    grant_type = poll_grant(FakeRequests(approved), grants, RecordingSigner(signer, events))
    context = poll(now=NOW + 60)
    # When the agent polls
    grant_type.issue(context, grant_type.validate(context))
    # Then the token was signed first and the grant consumed after
    assert events == ["sign", "consume req_1"]
    # And the next poll finds the grant used up
    with pytest.raises(InvalidGrant) as caught:
        grant_type.validate(poll(now=NOW + 120))
    assert caught.value.reason == "grant_ended"


def test_a_signing_failure_does_not_use_up_a_single_use_grant(signer: LocalSigner) -> None:
    # Given an approved single-use grant and a signer that fails
    events: list[str] = []
    approved = pending_request(single_use=True).decided("approved", "auto", NOW)
    grants = FakeGrants(grant(single_use=True), events=events)
    context = poll(now=NOW + 60)
    failing = poll_grant(FakeRequests(approved), grants, RecordingSigner(signer, events, fail=True))
    # When signing fails
    with pytest.raises(TimeoutError):
        failing.issue(context, failing.validate(context))
    # Then the grant is untouched, and a later poll still gets its token
    assert events == ["sign"] and not grants.grants[("bot", "req_1")].consumed
    working = poll_grant(FakeRequests(approved), grants, RecordingSigner(signer, events))
    assert working.issue(context, working.validate(context)).token


def test_two_tokens_racing_for_a_single_use_grant_yield_one(signer: LocalSigner) -> None:
    # Given two polls that both validated before either consumed the grant
    approved = pending_request(single_use=True).decided("approved", "auto", NOW)
    grants = FakeGrants(grant(single_use=True))
    grant_type = poll_grant(FakeRequests(approved), grants, signer)
    first, second = poll(now=NOW + 60), poll(now=NOW + 61)
    first_issuance, second_issuance = grant_type.validate(first), grant_type.validate(second)
    # When both issue / Then the first gets its token and the second is refused after signing
    assert grant_type.issue(first, first_issuance).token
    with pytest.raises(InvalidGrant) as caught:
        grant_type.issue(second, second_issuance)
    assert caught.value.reason == "single_use_grant_consumed"
