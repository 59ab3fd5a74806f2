"""Approver groups with `sign_in: true`, and denials with a reason, with in-memory fakes.

The approval page decides only for a live session whose email is the link's approver (case does not
count); anyone else is sent to sign in or refused, with one audit record and nothing shown or changed.
"""

from __future__ import annotations

from typing import Any

from agent_auth.jit import pages
from agent_auth.jit.approval import MAX_DENY_REASON, ApprovalService, read_decision
from agent_auth.jit.links import ApprovalLink
from agent_auth.oauth.authorize.stores import session_hash
from agent_auth.records import ApproverGroup, UserSession
from tests.unit.test_approval_service import LEAD, META, NOW, ONCALL, FakeGrants, FakePolicy, World

LEAD_COOKIE, ONCALL_COOKIE, OLD_COOKIE = "c-lead-" + "x" * 30, "c-oncall-" + "y" * 30, "c-old-" + "z" * 30


class SignInPolicy(FakePolicy):
    """The support-leads group, as applied with `sign_in: true` (or not)."""

    def __init__(self, sign_in: bool = True) -> None:
        super().__init__()
        self.sign_in = sign_in

    def approver_group(self, group: str) -> ApproverGroup | None:
        members = self.groups.get(group)
        return None if members is None else ApproverGroup(group, tuple(members), self.sign_in)


class FakeSessions:
    def __init__(self) -> None:
        sessions = (
            (LEAD_COOKIE, LEAD.upper(), NOW + 60),
            (ONCALL_COOKIE, ONCALL, NOW + 60),
            (OLD_COOKIE, LEAD, NOW - 30),  # expired
        )
        self.items = {
            session_hash(cookie): UserSession(session_hash(cookie), user, (), NOW - 90, expires)
            for cookie, user, expires in sessions
        }
        self.reads = 0

    def get_session(self, hashed: str, now: int) -> UserSession | None:
        self.reads += 1
        found = self.items.get(hashed)
        return found if found is not None and now < found.expires_at else None


class SignInWorld(World):
    def __init__(self, sign_in: bool = True) -> None:
        super().__init__(policy=SignInPolicy(sign_in))
        self.sessions = FakeSessions()
        self.service = ApprovalService(
            requests=self.requests,
            grants=FakeGrants(),
            agents=self.policy,
            mac=self.mac,
            audit=self.audit,
            transaction=self.transaction,
            clock=self.clock,
            sessions=self.sessions,
        )

    def view_as(self, link: ApprovalLink, cookie: str | None) -> Any:
        return self.service.view(link.request_id, link.params(), META, cookie)

    def decide_as(self, link: ApprovalLink, cookie: str | None, choice: str = "approve", **extra: str) -> Any:
        decision = read_decision(link.request_id, {**link.params(), "decision": choice, **extra}, cookie)
        assert decision is not None
        return self.service.decide(decision, META)


# --- signed in as the link's approver --------------------------------------------------------------


def test_the_signed_in_approver_sees_the_request_and_may_decide() -> None:
    world = SignInWorld()
    result = world.view_as(world.link(), LEAD_COOKIE)
    assert (result.verdict, result.status, result.can_decide) == ("pending", 200, True)
    # The session's email is compared without case; the record names both the approver and the user.
    assert result.audit.approver == LEAD and result.audit.user == LEAD.upper()
    assert result.request is not None and world.audit.records == []


def test_the_signed_in_approver_approves_and_the_record_names_the_session_user() -> None:
    world = SignInWorld()
    result = world.decide_as(world.link(), LEAD_COOKIE)
    assert (result.verdict, result.status, result.committed) == ("approved", 200, True)
    assert world.stored().status == "approved" and world.stored().decided_by == LEAD
    assert world.audit.records == [result.audit] and result.audit.user == LEAD.upper()


# --- no session, or an expired one -------------------------------------------------------------------


def test_without_a_session_the_view_sends_the_approver_to_sign_in_and_shows_nothing() -> None:
    world = SignInWorld()
    result = world.view_as(world.link(), None)
    assert (result.verdict, result.status, result.needs_sign_in, result.can_decide) == (
        "sign_in_required",
        302,
        True,
        False,
    )
    assert result.request is None  # nothing about the request before the approver is known
    assert result.audit.reason == "sign_in_required" and result.audit.decision == "deny"
    assert world.stored() == world.request


def test_an_expired_session_counts_as_none() -> None:
    world = SignInWorld()
    result = world.view_as(world.link(), OLD_COOKIE)
    assert (result.verdict, result.needs_sign_in) == ("sign_in_required", True)
    assert world.sessions.reads == 1


def test_an_unknown_cookie_counts_as_none() -> None:
    world = SignInWorld()
    assert world.view_as(world.link(), "not-a-session").verdict == "sign_in_required"


def test_a_decision_without_a_session_decides_nothing_and_is_audited_once() -> None:
    # Given an approver whose session ended between the page and the click
    world = SignInWorld()
    result = world.decide_as(world.link(), OLD_COOKIE)
    # Then nothing is decided, no sign-in redirect is offered from a POST, and one record says why
    assert (result.verdict, result.status, result.needs_sign_in) == ("sign_in_required", 403, False)
    assert world.stored().status == "pending" and world.transaction.grants == []
    assert result.audit.reason == "sign_in_required" and not result.committed
    assert pages.words(result)[0] == "Sign in to decide"


def test_without_a_session_store_a_sign_in_group_can_never_decide() -> None:
    world = SignInWorld()
    world.service._sessions = None  # misconfigured wiring fails closed
    assert world.decide_as(world.link(), LEAD_COOKIE).verdict == "sign_in_required"
    assert world.stored().status == "pending"


# --- signed in as someone else -------------------------------------------------------------------------


def test_a_forwarded_link_opened_by_another_signed_in_user_is_refused_by_name() -> None:
    world = SignInWorld()
    result = world.view_as(world.link(LEAD), ONCALL_COOKIE)
    assert (result.verdict, result.status, result.can_decide) == ("wrong_approver", 403, False)
    assert result.request is None
    assert result.audit.reason == "wrong_approver"
    assert (result.audit.approver, result.audit.user) == (LEAD, ONCALL)
    title, message = pages.words(result)
    assert f"This link is for {LEAD}; you are signed in as {ONCALL}" in message and title


def test_a_decision_by_another_signed_in_user_changes_nothing() -> None:
    world = SignInWorld()
    result = world.decide_as(world.link(LEAD), ONCALL_COOKIE, "deny")
    assert (result.verdict, result.status) == ("wrong_approver", 403)
    assert world.stored() == world.request and world.transaction.grants == []
    assert len(world.audit.records) == 0 and result.audit.reason == "wrong_approver"


def test_an_approver_signed_in_as_themselves_cannot_use_a_colleagues_link() -> None:
    # oncall is an approver too, but this link was sent to lead
    world = SignInWorld()
    assert world.decide_as(world.link(LEAD), ONCALL_COOKIE).verdict == "wrong_approver"


def test_a_forged_link_is_refused_before_any_session_is_read() -> None:
    world = SignInWorld()
    link = world.link()
    forged = ApprovalLink(link.request_id, ONCALL, link.digest, link.expires_at, link.signature)
    assert world.view_as(forged, ONCALL_COOKIE).verdict == "invalid"
    assert world.sessions.reads == 0


def test_groups_without_sign_in_ignore_sessions() -> None:
    world = SignInWorld(sign_in=False)
    result = world.decide_as(world.link(LEAD), ONCALL_COOKIE)
    assert result.verdict == "approved" and world.sessions.reads == 0


# --- deny with a reason --------------------------------------------------------------------------------


def test_a_denial_keeps_its_reason_on_the_request_and_in_the_audit_record() -> None:
    world = SignInWorld(sign_in=False)
    result = world.decide_as(world.link(), None, "deny", reason="  Customer not verified (ticket 77)  ")
    assert result.verdict == "denied"
    assert world.stored().deny_reason == "Customer not verified (ticket 77)"
    assert result.audit.reason == "denied: Customer not verified (ticket 77)"
    assert world.audit.records == [result.audit]


def test_a_denial_without_a_reason_is_recorded_as_before() -> None:
    world = SignInWorld(sign_in=False)
    result = world.decide_as(world.link(), None, "deny")
    assert result.audit.reason == "denied" and world.stored().deny_reason is None


def test_an_approval_ignores_the_reason_field() -> None:
    world = SignInWorld(sign_in=False)
    result = world.decide_as(world.link(), None, "approve", reason="looks fine")
    assert result.audit.reason == "approved" and world.stored().deny_reason is None


def test_a_reason_with_control_characters_is_refused_and_the_form_offered_again() -> None:
    world = SignInWorld(sign_in=False)
    result = world.decide_as(world.link(), None, "deny", reason="no\r\nBcc: x@example.com")
    assert (result.verdict, result.status, result.can_decide) == ("reason_refused", 400, True)
    assert world.stored() == world.request and world.transaction.grants == []
    assert result.audit.reason == "deny_reason_refused" and "Bcc" not in str(result.audit)


def test_a_reason_too_long_is_refused() -> None:
    world = SignInWorld(sign_in=False)
    assert world.decide_as(world.link(), None, "deny", reason="x" * (MAX_DENY_REASON + 1)).status == 400
    assert world.decide_as(world.link(), None, "deny", reason="x" * MAX_DENY_REASON).verdict == "denied"


def test_a_zero_width_format_character_is_refused() -> None:
    world = SignInWorld(sign_in=False)
    assert world.decide_as(world.link(), None, "deny", reason="ok\u202egnp.exe").verdict == "reason_refused"
