"""The approval rules, with in-memory fakes: the link's MAC before any read, digest binding, expiry, owner
and approver checks at view and at decision, the race and conflict outcomes, and the CSRF binding."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from agent_auth.clock import FixedClock
from agent_auth.jit import pages
from agent_auth.jit.approval import ApprovalService, Decision, read_decision
from agent_auth.jit.links import ApprovalLink, csrf_binding, parse_link, sign_link
from agent_auth.jit.requests import request_digest
from agent_auth.ports import Write
from agent_auth.records import AccessRequest, Agent, ApproverGroup, JitGrant, JitRule
from tests.unit.fakes import FakeAudit

NOW = 1_800_000_000
META = {"http_request_id": "http-1", "source_ip": "192.0.2.1"}
OWNER, LEAD, ONCALL = "owner@example.com", "lead@example.com", "oncall@example.com"


class FakeMac:
    def __init__(self) -> None:
        self.key = b"k" * 32
        self.verified = 0

    def generate_mac(self, message: bytes) -> bytes:
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def verify_mac(self, message: bytes, mac: bytes) -> bool:
        self.verified += 1
        return hmac.compare_digest(self.generate_mac(message), mac)


class FakeRequests:
    def __init__(self, *requests: AccessRequest) -> None:
        self.items = {r.request_id: r for r in requests}
        self.reads: list[str] = []

    def get_request(self, request_id: str) -> AccessRequest | None:
        self.reads.append(request_id)
        return self.items.get(request_id)

    def decision(self, decided: AccessRequest, now: int) -> Write:
        return Write(("decision", decided, now))


class FakeGrants:
    def put(self, grant: JitGrant) -> Write:
        return Write(("grant", grant))


class FakePolicy:
    def __init__(self, owner: str = OWNER, members: Sequence[str] = (LEAD, ONCALL, OWNER)) -> None:
        rule = JitRule(("crm.contacts.write",), "crm", "support-leads", False, 3600, False)
        self.agent: Agent | None = Agent(
            "support-bot",
            owner,
            "client_secret_basic",
            audiences={"crm": "https://crm.example.com"},
            jit=(rule,),
        )
        self.groups = {"support-leads": list(members)}

    def get_client(self, client_id: str) -> Agent | None:
        return self.agent if self.agent and client_id == self.agent.client_id else None

    def group_members(self, group: str) -> list[str]:
        return self.groups.get(group, [])

    def approver_group(self, group: str) -> ApproverGroup | None:
        members = self.groups.get(group)
        return None if members is None else ApproverGroup(group, tuple(members))


class FakeTransaction:
    """Applies a decision only while the stored request is pending and unexpired, as DynamoDB's
    condition does; `someone_else` decides first (the race), or leaves it pending (a conflict in flight)."""

    def __init__(self, requests: FakeRequests, audit: FakeAudit) -> None:
        self.requests, self.audit = requests, audit
        self.grants: list[JitGrant] = []
        self.someone_else: AccessRequest | None = None
        self.fail = False

    def commit(self, writes: Sequence[Write]) -> bool:
        if self.someone_else is not None:
            self.requests.items[self.someone_else.request_id] = self.someone_else
        # FakeAudit.entry gives a callable that records when run; the other fakes give tagged tuples.
        operations = [w.operation if isinstance(w.operation, tuple) else ("run", w.operation) for w in writes]
        for kind, *rest in operations:
            if kind == "decision":
                decided, now = rest
                stored = self.requests.items[decided.request_id]
                if self.fail or not stored.is_pending(now):
                    return False
        for kind, *rest in operations:
            if kind == "decision":
                self.requests.items[rest[0].request_id] = rest[0]
            elif kind == "grant":
                self.grants.append(rest[0])
            elif kind == "run":
                rest[0]()
        return True


def pending(**changes: Any) -> AccessRequest:
    request = AccessRequest(
        request_id="req_abc",
        client_id="support-bot",
        owner=OWNER,
        scopes=("crm.contacts.write",),
        audience="crm",
        audience_uri="https://crm.example.com",
        reason="Merge duplicates",
        duration=1800,
        single_use=False,
        approvers="support-leads",
        status="pending",
        created_at=NOW - 60,
        expires_at=NOW + 3540,
    )
    return replace(request, **changes)


class World:
    def __init__(self, request: AccessRequest | None = None, policy: FakePolicy | None = None) -> None:
        self.request = request or pending()
        self.requests = FakeRequests(self.request)
        self.policy = policy or FakePolicy()
        self.mac = FakeMac()
        self.audit = FakeAudit()
        self.transaction = FakeTransaction(self.requests, self.audit)
        self.clock = FixedClock(NOW)
        self.failed: list[tuple[str, str]] = []
        world = self

        class Seam:
            def link_failed(self, source_ip: str, reason: str) -> None:
                world.failed.append((source_ip, reason))

            def blocked(self, source_ip: str) -> bool:
                return False

        self.service = ApprovalService(
            requests=self.requests,
            grants=FakeGrants(),
            agents=self.policy,
            mac=self.mac,
            audit=self.audit,
            transaction=self.transaction,
            clock=self.clock,
            failed_links=Seam(),
        )

    def link(self, approver: str = LEAD, request: AccessRequest | None = None) -> ApprovalLink:
        request = request or self.request
        return sign_link(
            self.mac,
            request_id=request.request_id,
            approver=approver,
            digest=request_digest(request),
            expires_at=request.expires_at,
        )

    def view(self, link: ApprovalLink) -> Any:
        return self.service.view(link.request_id, link.params(), META)

    def decide(self, link: ApprovalLink, choice: str = "approve") -> Any:
        decision = read_decision(link.request_id, {**link.params(), "decision": choice})
        assert decision is not None
        return self.service.decide(decision, META)

    def stored(self) -> AccessRequest:
        return self.requests.items[self.request.request_id]


# --- the happy path ---------------------------------------------------------------------------------


def test_a_view_offers_the_decision_changes_nothing_and_returns_one_record() -> None:
    world = World()
    result = world.view(world.link())
    assert (result.verdict, result.status, result.can_decide) == ("pending", 200, True)
    assert result.audit.reason == "shown" and result.audit.approver == LEAD and not result.committed
    assert world.stored() == world.request and world.audit.records == []


def test_an_approval_commits_decision_grant_and_record_in_one_transaction() -> None:
    world = World()
    result = world.decide(world.link())
    assert (result.verdict, result.status, result.committed) == ("approved", 200, True)
    assert world.stored().status == "approved" and world.stored().decided_by == LEAD
    assert [g.ends_at for g in world.transaction.grants] == [NOW + 1800]
    assert world.audit.records == [result.audit] and result.audit.decision == "allow"


def test_a_denial_writes_no_live_grant_but_a_tombstone() -> None:
    """The tombstone's conditional Put makes the grants table itself refuse a live grant for a denied
    request (issue: the token path must never honour one)."""
    world = World()
    assert world.decide(world.link(), "deny").verdict == "denied"
    [tombstone] = world.transaction.grants
    assert world.stored().status == "denied" and tombstone.revoked and not tombstone.is_usable(NOW)


# --- the link: MAC first, then the digest ----------------------------------------------------------


def test_a_link_whose_mac_fails_reads_nothing_and_reaches_the_seam() -> None:
    world = World()
    forged = replace(world.link(), signature=b"\0" * 32)
    for result in (world.view(forged), world.decide(forged)):
        assert (result.verdict, result.status, result.audit.reason) == ("invalid", 403, "bad_signature")
        assert result.audit.approver is None and result.audit.client_id is None
        # The request id of a link that did not verify is input: only its fingerprint is kept
        assert result.audit.details["access_request"] != forged.request_id
    assert world.requests.reads == [], "the MAC is verified before any read"
    assert world.failed == [("192.0.2.1", "bad_signature")] * 2
    assert world.stored().status == "pending"


def test_a_malformed_link_is_invalid_reaches_the_seam_and_costs_no_mac() -> None:
    world = World()
    params = {**world.link().params(), "d": "not-a-digest"}
    result = world.service.view("req_abc", params, META)
    assert (result.verdict, result.audit.reason) == ("invalid", "malformed_link")
    assert world.mac.verified == 0 and world.requests.reads == []
    assert world.failed == [("192.0.2.1", "malformed_link")]


@pytest.mark.parametrize("missing", ["approver", "d", "expires", "sig"])
def test_a_link_missing_a_field_is_not_a_link(missing: str) -> None:
    params: dict[str, str | None] = {**World().link().params(), missing: None}
    assert parse_link("req_abc", params) is None


def test_a_request_changed_after_the_link_was_signed_cannot_be_decided() -> None:
    world = World()
    link = world.link()
    world.requests.items["req_abc"] = replace(world.request, reason="Export every contact")
    for result in (world.view(link), world.decide(link)):
        assert (result.verdict, result.audit.reason) == ("invalid", "request_changed")
    assert world.requests.items["req_abc"].status == "pending" and world.transaction.grants == []


def test_a_digest_swapped_into_the_link_fails_the_mac() -> None:
    world = World()
    changed = replace(world.request, reason="Export every contact")
    world.requests.items["req_abc"] = changed
    swapped = replace(world.link(), digest=request_digest(changed))
    assert world.view(swapped).audit.reason == "bad_signature"


def test_an_expired_link_is_410_at_view_and_decision() -> None:
    world = World()
    link = world.link()
    world.clock.advance(3540)
    for result in (world.view(link), world.decide(link)):
        assert (result.verdict, result.status) == ("link_expired", 410)
    assert world.stored().status == "pending"


# --- who may decide --------------------------------------------------------------------------------


def test_the_recorded_owner_cannot_decide() -> None:
    world = World()
    link = world.link(OWNER)
    for result in (world.view(link), world.decide(link)):
        assert (result.verdict, result.status, result.can_decide) == ("owner", 403, False)
    assert world.stored().status == "pending"


def test_an_approver_the_policy_made_the_owner_since_cannot_view_to_decide_or_decide() -> None:
    # Given lead was an approver when the link was signed, and is the agent's owner now
    world = World(policy=FakePolicy(owner=LEAD.upper()))
    link = world.link(LEAD)
    for result in (world.view(link), world.decide(link)):
        assert (result.verdict, result.status, result.audit.reason) == ("owner", 403, "owner")
    assert world.stored().status == "pending" and world.transaction.grants == []


def test_an_approver_removed_since_cannot_view_to_decide_or_decide() -> None:
    world = World(policy=FakePolicy(members=(ONCALL,)))
    link = world.link(LEAD)
    for result in (world.view(link), world.decide(link)):
        assert (result.verdict, result.status) == ("approver_removed", 403)
    assert world.stored().status == "pending"


def test_a_request_the_policy_no_longer_allows_is_409() -> None:
    world = World()
    world.policy.agent = replace(world.policy.agent, jit=())  # type: ignore[arg-type]
    result = world.decide(world.link())
    assert (result.verdict, result.status) == ("policy_changed", 409) and world.stored().status == "pending"


def test_a_removed_agent_cannot_have_its_request_approved() -> None:
    world = World()
    world.policy.agent = None
    assert world.decide(world.link()).verdict == "policy_changed"


def test_a_disabled_agent_cannot_have_its_request_approved() -> None:
    # A request the kill switch's sweep missed (written just after it) still cannot be approved: the
    # grant would come back to life after `agents enable`
    world = World()
    world.policy.agent = replace(world.policy.agent, disabled=True)  # type: ignore[arg-type]
    result = world.decide(world.link())
    assert (result.verdict, result.status) == ("policy_changed", 409) and world.stored().status == "pending"
    assert result.audit.reason == "agent_disabled"


# --- second decisions and races ---------------------------------------------------------------------


def test_the_same_decision_again_shows_the_outcome_with_200() -> None:
    world = World()
    world.decide(world.link())
    again = world.decide(world.link(), "approve")
    assert (again.verdict, again.status, again.refused, again.committed) == ("approved", 200, None, False)
    assert again.audit.reason == "already_decided" and len(world.transaction.grants) == 1


def test_a_conflicting_decision_after_one_was_made_is_409_showing_what_happened() -> None:
    world = World()
    world.decide(world.link(ONCALL), "deny")
    conflict = world.decide(world.link(LEAD), "approve")
    assert (conflict.verdict, conflict.status, conflict.refused) == ("denied", 409, "approve")
    assert pages.words(conflict)[0] == "Denied" and ONCALL in pages.words(conflict)[1]
    assert world.stored().decided_by == ONCALL and not [g for g in world.transaction.grants if not g.revoked]


def test_the_loser_of_a_race_sees_the_winners_outcome_as_a_conflict() -> None:
    # Given both passed every check; the transaction finds oncall's denial already there
    world = World()
    world.transaction.someone_else = world.request.decided("denied", ONCALL, NOW)
    lost = world.decide(world.link(LEAD), "approve")
    assert (lost.verdict, lost.status, lost.refused) == ("denied", 409, "approve")
    assert not lost.committed and lost.audit.reason == "already_decided" and lost.audit.decision == "deny"
    assert world.transaction.grants == [] and world.audit.records == []


def test_the_loser_of_a_race_to_the_same_decision_sees_the_outcome_with_200() -> None:
    world = World()
    world.transaction.someone_else = world.request.decided("approved", ONCALL, NOW)
    lost = world.decide(world.link(LEAD), "approve")
    assert (lost.verdict, lost.status, lost.refused) == ("approved", 200, None)
    assert world.stored().decided_by == ONCALL


def test_a_transaction_refused_while_still_pending_asks_to_try_again() -> None:
    world = World()
    world.transaction.fail = True
    result = world.decide(world.link())
    assert (result.verdict, result.status) == ("retry", 409) and world.stored().status == "pending"


def test_a_request_that_expired_during_the_decision_is_410() -> None:
    world = World()
    world.transaction.fail = True
    world.transaction.someone_else = replace(world.request, expires_at=NOW)
    assert world.decide(world.link()).verdict == "request_expired"


# --- the CSRF binding ---------------------------------------------------------------------------------


def test_the_csrf_binding_is_keyed_by_the_link_and_names_its_request_and_approver() -> None:
    world = World()
    lead, oncall = world.link(LEAD), world.link(ONCALL)
    key, context = csrf_binding(lead)
    assert key == lead.signature and context == b"req_abc\nlead@example.com"
    assert csrf_binding(oncall) != csrf_binding(lead)
    tampered = replace(lead, approver=ONCALL)
    assert csrf_binding(tampered) != csrf_binding(oncall), "a tampered link binds to nothing issued"


@pytest.mark.parametrize("choice", ["maybe", None])
def test_a_form_without_a_decision_is_not_the_pages_form(choice: str | None) -> None:
    assert read_decision("req_abc", {**World().link().params(), "decision": choice}) is None


def test_the_decision_a_form_carries() -> None:
    link = World().link()
    assert read_decision("req_abc", {**link.params(), "decision": "deny"}) == Decision(link, "deny")
