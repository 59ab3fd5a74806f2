"""Viewing and deciding an access request from its signed link.

GET only looks (mail scanners fetch links): it verifies the link and describes the request. A decision
is a POST, checked again from scratch, and one conditional transaction moves the request from pending
to approved or denied, writes the grant (for a denial, a revoked tombstone) and the audit record.

The checks, in order, each on what is current at the moment of the view or decision:
1. the link's MAC, over what the link itself carries, before anything is read (jit/links.py);
2. the request exists and is still what the link was signed over (its digest);
3. the link has not expired;
4. the approver does not own the agent: neither the owner recorded on the request, nor the agent's
   owner now (an apply may have made an approver the owner since the email was sent);
5. the approver is still a member of the rule's approver group;
6. the request is still pending (else: its outcome; a conflicting decision is a 409);
7. the policy still allows what was requested.

For a group with `sign_in: true` one check comes right after 2: the browser holds a live signed-in
session (the upstream OpenID sign-in of oauth/authorize/, its cookie) whose email is the link's
approver, compared without case. Without one the approver is sent to sign in (`sign_in_required`);
as someone else, refused (`wrong_approver`). Nothing about the request is shown before that, so a
forwarded link shows nothing and decides nothing. The POST checks the session again.

A denial may carry the approver's reason (optional, bounded, no control characters): stored on the
request and in the decision's audit record. The agent's poll keeps its fixed `error_description`
(RFC 6749 §5.2 allows only a narrow ASCII set there, and errors.py keeps descriptions fixed).

A second click of the same decision, or the loser of a race, sees the outcome; a conflicting decision
after one was made is a 409 showing what happened. What the approver is shown is in jit/pages.py;
this module decides, and says which record to audit.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from agent_auth.audit import AuditRecord, printable, unverified
from agent_auth.clock import Clock
from agent_auth.jit.grants import still_allowed
from agent_auth.jit.links import ApprovalLink, MacVerifier, parse_link
from agent_auth.jit.requests import GrantWrites, grant_for, request_digest
from agent_auth.oauth.authorize.stores import session_hash
from agent_auth.ports import AuditLog, Transaction, Write
from agent_auth.records import AccessRequest, Agent, ApproverGroup, JitGrant, UserSession

Verdict = Literal[
    "invalid",
    "link_expired",
    "owner",
    "approver_removed",
    "policy_changed",
    "pending",
    "approved",
    "denied",
    "request_expired",
    "retry",
    "throttled",
    "sign_in_required",
    "wrong_approver",
    "reason_refused",
]
"""What the approver meets. `pending` offers Approve and Deny, and `reason_refused` offers them again."""

STATUS: Mapping[Verdict, int] = {
    "throttled": 429,
    "invalid": 403,
    "link_expired": 410,
    "owner": 403,
    "approver_removed": 403,
    "policy_changed": 409,
    "pending": 200,
    "approved": 200,
    "denied": 200,
    "request_expired": 410,
    "retry": 409,
    "sign_in_required": 403,
    "wrong_approver": 403,
    "reason_refused": 400,
}
SIGN_IN_VERDICTS = frozenset({"sign_in_required", "wrong_approver"})
"""Met before the approver is known: the page shows nothing about the request."""
SIGN_IN_REDIRECT = 302
"""A view that needs a sign-in sends the browser to sign in (the handler knows where)."""

MAX_DENY_REASON = 500
REASON_FIELD = "reason"
_CONTROL = ("Cc", "Cf", "Zl", "Zp")

Choice = Literal["approve", "deny"]
OUTCOME_OF: Mapping[Choice, Literal["approved", "denied"]] = {"approve": "approved", "deny": "denied"}


class ApprovalRequests(Protocol):
    def get_request(self, request_id: str) -> AccessRequest | None: ...

    def decision(self, decided: AccessRequest, now: int) -> Write:
        """The write that moves a pending, unexpired request to its decided status, or fails."""
        ...


class Groups(Protocol):
    def group_members(self, group: str) -> list[str]: ...


class PolicyReader(Protocol):
    def get_client(self, client_id: str) -> Agent | None: ...

    def approver_group(self, group: str) -> ApproverGroup | None:
        """The group as applied now: members, and whether they must sign in."""
        ...


class SessionReader(Protocol):
    def get_session(self, session_hash: str, now: int) -> UserSession | None:
        """The live session stored under this hash; None when unknown or expired."""
        ...


class FailedLinks(Protocol):
    def link_failed(self, source_ip: str, reason: str) -> None:
        """A link from `source_ip` failed verification (incomplete, or its MAC did not verify).

        The seam for slowing down sources that probe links; called once per such request."""
        ...

    def blocked(self, source_ip: str) -> bool:
        """True while `source_ip` has sent too many bad links: refused before any KMS call."""
        ...


class IgnoreFailedLinks:
    def link_failed(self, source_ip: str, reason: str) -> None:
        return None

    def blocked(self, source_ip: str) -> bool:
        return False


class SourceThrottle(Protocol):
    def source_failure(self, source: str) -> int | None: ...

    def source_waiting(self, source: str) -> int | None: ...


class ThrottledLinks:
    """Bad links count against the source address API Gateway saw, with the failed client
    authentications' counters (oauth/throttle.py): past the limit, the source waits out the window."""

    def __init__(self, throttle: SourceThrottle) -> None:
        self._throttle = throttle

    def link_failed(self, source_ip: str, reason: str) -> None:
        self._throttle.source_failure(source_ip)

    def blocked(self, source_ip: str) -> bool:
        return self._throttle.source_waiting(source_ip) is not None


@dataclass(frozen=True)
class Decision:
    """What the page's form carries back: the link and the approver's choice, the optional reason
    for a denial, and the browser's session cookie (for groups whose approvers sign in)."""

    link: ApprovalLink
    choice: Choice
    session: str | None = field(default=None, repr=False)
    reason: str | None = None
    """The approver's words, checked (`reason_ok`); kept only with a denial."""
    reason_ok: bool = True


def read_decision(
    request_id: str, fields: Mapping[str, str | None], session: str | None = None
) -> Decision | None:
    """The decision a POST carries, or None when it is not the page's form."""
    link = parse_link(request_id, fields)
    choice = fields.get("decision")
    if link is None or choice not in ("approve", "deny"):
        return None
    raw = fields.get(REASON_FIELD)
    ok = deny_reason_ok(raw)
    reason = (raw.strip() or None) if raw is not None and ok else None
    return Decision(link, "approve" if choice == "approve" else "deny", session, reason, ok)


def deny_reason_ok(raw: str | None) -> bool:
    """Optional; at most MAX_DENY_REASON characters and no control or format characters (they would
    reach the audit trail, the CLI's terminal and email clients as written)."""
    if raw is None:
        return True
    return len(raw) <= MAX_DENY_REASON and not any(unicodedata.category(c) in _CONTROL for c in raw)


@dataclass(frozen=True)
class ApprovalResult:
    verdict: Verdict
    status: int
    audit: AuditRecord
    committed: bool = False
    """The audit record was written in the decision's transaction; nobody writes it again."""
    request: AccessRequest | None = None
    link: ApprovalLink | None = None
    """The verified link, when the approver may decide: the page's form carries it back."""
    refused: Choice | None = None
    """A decision that did not count, because another had been made (a 409)."""
    approver: str | None = None
    """The approver the link names, once the link is proven (for `wrong_approver`)."""
    signed_in_as: str | None = None
    """Who the browser's session belongs to, when the group requires sign-in."""

    @property
    def can_decide(self) -> bool:
        return self.verdict in ("pending", "reason_refused") and self.link is not None

    @property
    def needs_sign_in(self) -> bool:
        """A view to answer by sending the browser to sign in, then back to this link."""
        return self.verdict == "sign_in_required" and self.link is not None


@dataclass(frozen=True)
class _Checked:
    verdict: Verdict
    reason: str
    request: AccessRequest | None = None
    user: str | None = None
    """The signed-in approver (groups with sign_in), for the audit record."""


def denied_tombstone(grant: JitGrant, now: int) -> JitGrant:
    """What a denial leaves in the grants table under the request's id: a grant already revoked and
    ended. The grant Put is conditional (attribute_not_exists), so the table itself then refuses any
    live grant for a denied request, whatever writes it: the token path never honours one."""
    return replace(grant, ends_at=now, revoked=True, approved_by=None, single_use=False)


class ApprovalService:
    def __init__(
        self,
        *,
        requests: ApprovalRequests,
        grants: GrantWrites,
        agents: PolicyReader,
        mac: MacVerifier,
        audit: AuditLog,
        transaction: Transaction,
        clock: Clock,
        failed_links: FailedLinks | None = None,
        sessions: SessionReader | None = None,
    ) -> None:
        self._sessions = sessions
        """Without it, no session is ever found: a group that requires sign-in can never decide."""
        self._requests = requests
        self._grants = grants
        self._transaction = transaction
        self._agents = agents
        self._mac = mac
        self._audit = audit
        self._clock = clock
        self._failed_links = failed_links or IgnoreFailedLinks()

    def view(
        self,
        request_id: str,
        params: Mapping[str, str | None],
        meta: Mapping[str, str],
        session: str | None = None,
    ) -> ApprovalResult:
        link = parse_link(request_id, params)
        if link is None and self._failed_links.blocked(meta.get("source_ip", "")):
            checked = _Checked("throttled", "too_many_bad_links")
        elif link is None:
            self._failed_links.link_failed(meta.get("source_ip", ""), "malformed_link")
            checked = _Checked("invalid", "malformed_link")
        else:
            checked = self._check(link, meta, session)
        status = SIGN_IN_REDIRECT if checked.verdict == "sign_in_required" else STATUS[checked.verdict]
        record = self._record(
            "approval.view",
            checked,
            request_id=request_id,
            link=link,
            status=status,
            meta=meta,
            allow=status < 400 and checked.verdict != "sign_in_required",
        )
        return self._result(
            checked,
            status,
            record,
            link=link if checked.verdict in ("pending", "sign_in_required") else None,
            approver=link.approver if link else None,
        )

    def decide(self, decision: Decision, meta: Mapping[str, str]) -> ApprovalResult:
        link = decision.link
        checked = self._check(link, meta, decision.session)
        if checked.verdict != "pending" or checked.request is None:
            return self._refused(decision, checked, meta)
        if not decision.reason_ok:
            # The form again, with nothing decided: the reason was too long or held control characters.
            refused = replace(checked, verdict="reason_refused", reason="deny_reason_refused")
            record = self._record(
                "approval.decide", refused, request_id=link.request_id, link=link, status=400, meta=meta
            )
            return self._result(refused, 400, record, link=link, approver=link.approver)
        now = int(self._clock.now())
        decided = checked.request.decided(OUTCOME_OF[decision.choice], link.approver, now)
        audit_reason: str = decided.status
        if decided.status == "denied" and decision.reason:
            decided = replace(decided, deny_reason=decision.reason)
            audit_reason = printable(f"denied: {decision.reason}", MAX_DENY_REASON + 8) or audit_reason
        made = _Checked(decided.status, audit_reason, decided, user=checked.user)
        record = self._record(
            "approval.decide", made, request_id=link.request_id, link=link, status=200, meta=meta, allow=True
        )
        writes = [self._requests.decision(decided, now), self._audit.entry(record)]
        grant = grant_for(decided, now)
        if decided.status == "denied":
            grant = denied_tombstone(grant, now)
        writes.append(self._grants.put(grant))
        if self._transaction.commit(writes):
            return ApprovalResult(
                made.verdict, 200, record, committed=True, request=decided, signed_in_as=checked.user
            )
        # Someone else decided first, or it expired in between: show what happened.
        current = self._requests.get_request(link.request_id) or checked.request
        met = self._state(current, now).verdict
        # Still pending: a concurrent transaction was in flight (TransactionConflict), nothing decided.
        verdict: Verdict = "retry" if met == "pending" else met
        return self._refused(decision, _Checked(verdict, "already_decided", current, user=checked.user), meta)

    def _refused(self, decision: Decision, checked: _Checked, meta: Mapping[str, str]) -> ApprovalResult:
        """A decision that was not made: what the approver meets instead, audited as a refusal. An
        outcome met by a different decision is a conflict (409); by the same decision, just the outcome."""
        status = STATUS[checked.verdict]
        conflict = (
            checked.verdict in ("approved", "denied") and checked.verdict != OUTCOME_OF[decision.choice]
        )
        if conflict:
            status = 409
        link = decision.link
        record = self._record(
            "approval.decide", checked, request_id=link.request_id, link=link, status=status, meta=meta
        )
        return self._result(
            checked, status, record, refused=decision.choice if conflict else None, approver=link.approver
        )

    @staticmethod
    def _result(
        checked: _Checked,
        status: int,
        record: AuditRecord,
        *,
        link: ApprovalLink | None = None,
        refused: Choice | None = None,
        approver: str | None = None,
    ) -> ApprovalResult:
        """What the page is given: before the approver is known (sign-in verdicts), not the request."""
        hidden = checked.verdict in SIGN_IN_VERDICTS
        return ApprovalResult(
            checked.verdict,
            status,
            record,
            request=None if hidden else checked.request,
            link=link,
            refused=refused,
            approver=approver if checked.request is not None else None,
            signed_in_as=checked.user,
        )

    def _check(self, link: ApprovalLink, meta: Mapping[str, str], session: str | None) -> _Checked:
        if self._failed_links.blocked(meta.get("source_ip", "")):
            return _Checked("throttled", "too_many_bad_links")  # before any KMS call or read
        if not self._mac.verify_mac(link.message(), link.signature):
            self._failed_links.link_failed(meta.get("source_ip", ""), "bad_signature")
            return _Checked("invalid", "bad_signature")
        request = self._requests.get_request(link.request_id)
        if request is None:
            return _Checked("invalid", "unknown_request")
        if not hmac.compare_digest(link.digest, request_digest(request)):
            return _Checked("invalid", "request_changed")
        group = self._agents.approver_group(request.approvers) if request.approvers else None
        if group is None or not group.sign_in:
            return self._check_request(link, request, group)
        user = self._signed_in(session)
        if user is None:
            return _Checked("sign_in_required", "sign_in_required", request)
        if user.lower() != link.approver.lower():
            return _Checked("wrong_approver", "wrong_approver", request, user=user)
        return replace(self._check_request(link, request, group), user=user)

    def _signed_in(self, session: str | None) -> str | None:
        """The email of the browser's live session, if any (expiry compared in code, not by TTL)."""
        if not session or len(session) > 256 or self._sessions is None:
            return None
        found = self._sessions.get_session(session_hash(session), int(self._clock.now()))
        return found.user if found is not None else None

    def _check_request(
        self, link: ApprovalLink, request: AccessRequest, group: ApproverGroup | None
    ) -> _Checked:
        now = int(self._clock.now())
        if now >= link.expires_at:
            return _Checked("link_expired", "link_expired", request)
        agent = self._agents.get_client(request.client_id)
        owners = {request.owner.lower(), *((agent.owner.lower(),) if agent else ())}
        if link.approver.lower() in owners:
            return _Checked("owner", "owner", request)
        members = {m.lower() for m in (group.members if group else ())}
        if not request.approvers or link.approver.lower() not in members:
            return _Checked("approver_removed", "approver_removed", request)
        if not request.is_pending(now):
            return self._state(request, now)
        if agent is None or not still_allowed(agent, request.scopes, request.audience):
            return _Checked("policy_changed", "policy_changed", request)
        if agent.disabled:
            # The kill switch: nothing is approved for it (its sweep may have missed a late request).
            return _Checked("policy_changed", "agent_disabled", request)
        return _Checked("pending", "shown", request)

    @staticmethod
    def _state(request: AccessRequest, now: int) -> _Checked:
        if request.status == "pending":
            verdict: Verdict = "pending" if now < request.expires_at else "request_expired"
            return _Checked(verdict, "already_decided", request)
        return _Checked(request.status, "already_decided", request)

    def _record(
        self,
        action: str,
        checked: _Checked,
        *,
        request_id: str,
        link: ApprovalLink | None,
        status: int,
        meta: Mapping[str, str],
        allow: bool = False,
    ) -> AuditRecord:
        """The approver is named only once the link is proven (a request was found through it)."""
        request = checked.request
        return AuditRecord(
            action=action,
            decision="allow" if allow else "deny",
            at=self._clock.now(),
            reason=checked.reason,
            client_id=request.client_id if request else None,
            user=checked.user,
            approver=link.approver if request and link else None,
            scope_requested=" ".join(request.scopes) if request else None,
            audience=request.audience_uri if request else None,
            http_request_id=meta.get("http_request_id"),
            source_ip=meta.get("source_ip"),
            # As sent only once a link verified and found its request; before, a fingerprint (security.md).
            details={
                "access_request": printable(request_id) if request else unverified(request_id),
                "status": status,
            },
        )
