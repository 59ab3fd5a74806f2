"""Viewing and deciding an access request from its signed link.

GET only looks (mail scanners fetch links): it verifies the link and describes the request. A decision
is a POST, checked again from scratch, and one conditional transaction moves the request from pending
to approved or denied, writes the grant and the audit record. A second click, or the loser of a race,
sees the outcome. The agent's owner cannot decide; an approver removed from the group since the email
was sent cannot either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock
from agent_auth.jit.grants import still_allowed
from agent_auth.jit.links import ApprovalLink, MacVerifier, link_message
from agent_auth.jit.requests import GrantWrites, grant_for, request_digest
from agent_auth.ports import AuditLog, Transaction, Write
from agent_auth.records import AccessRequest, Agent


class ApprovalRequests(Protocol):
    def get_request(self, request_id: str) -> AccessRequest | None: ...

    def decision(self, decided: AccessRequest, now: int) -> Write:
        """The write that moves a pending, unexpired request to its decided status, or fails."""
        ...


class Groups(Protocol):
    def group_members(self, group: str) -> list[str]: ...


class PolicyReader(Groups, Protocol):
    def get_client(self, client_id: str) -> Agent | None: ...


@dataclass(frozen=True)
class Page:
    """What the approver sees. `can_decide` shows the Approve / Deny form."""

    status: int
    title: str
    message: str
    request: AccessRequest | None = None
    can_decide: bool = False
    facts: dict[str, str] = field(default_factory=dict)


INVALID = Page(
    403,
    "This link is not valid",
    "The link is incomplete or has been altered. Use the link from the email exactly as it was sent.",
)
EXPIRED = Page(410, "This link has expired", "The request can no longer be decided from this link.")


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
    ) -> None:
        self._requests = requests
        self._grants = grants
        self._transaction = transaction
        self._agents = agents
        self._mac = mac
        self._audit = audit
        self._clock = clock

    def view(self, link: ApprovalLink, meta: dict[str, str]) -> Page:
        page, request, reason = self._check(link)
        self._audit.write(
            self._record(
                "approval.view",
                link=link,
                request=request,
                page=page,
                reason=reason,
                meta=meta,
                allow=page.status < 400,
            )
        )
        return page

    def malformed(self, action: str, request_id: str, meta: dict[str, str]) -> Page:
        """A link missing its fields or with a signature that is not even base64url: refused, audited."""
        self._audit.write(
            AuditRecord(
                action=action,
                decision="deny",
                at=self._clock.now(),
                reason="malformed_link",
                http_request_id=meta.get("http_request_id"),
                source_ip=meta.get("source_ip"),
                details={"access_request": request_id[:64], "status": INVALID.status},
            )
        )
        return INVALID

    def refuse(self, link: ApprovalLink, reason: str, meta: dict[str, str]) -> None:
        """Audit a decision refused before its link was verified (a missing or wrong CSRF token). The
        link's approver is unproven here, so the record does not name one."""
        refused = Page(403, "Refused", reason)
        self._audit.write(
            self._record("approval.decide", link=link, request=None, page=refused, reason=reason, meta=meta)
        )

    def decide(self, link: ApprovalLink, decision: str, meta: dict[str, str]) -> Page:
        page, request, reason = self._check(link)
        if request is None or not page.can_decide:
            self._audit.write(
                self._record(
                    "approval.decide", link=link, request=request, page=page, reason=reason, meta=meta
                )
            )
            return page
        now = int(self._clock.now())
        decided = request.decided("approved" if decision == "approve" else "denied", link.approver, now)
        outcome = self._outcome(decided)
        record = self._record(
            "approval.decide",
            link=link,
            request=request,
            page=outcome,
            reason=decided.status,
            meta=meta,
            allow=True,
        )
        writes = [self._requests.decision(decided, now), self._audit.entry(record)]
        if decided.status == "approved":
            writes.append(self._grants.put(grant_for(decided, now)))
        if self._transaction.commit(writes):
            return outcome
        # Someone else decided first (or it expired in between): show what happened.
        current = self._requests.get_request(request.request_id) or request
        page = self._outcome(current, now)
        if current.is_pending(now):
            # A concurrent transaction was still in flight (TransactionConflict): nothing was decided.
            page = Page(
                409, "Please try again", "Another decision was being made at the same moment.", current
            )
        self._audit.write(
            self._record(
                "approval.decide", link=link, request=current, page=page, reason="already_decided", meta=meta
            )
        )
        return page

    def _check(self, link: ApprovalLink) -> tuple[Page, AccessRequest | None, str]:
        request = self._requests.get_request(link.request_id) if len(link.request_id) <= 64 else None
        if request is None:
            return INVALID, None, "unknown_request"
        message = link_message(link.request_id, link.approver, request_digest(request), link.expires_at)
        if not self._mac.verify_mac(message, link.signature):
            return INVALID, None, "bad_signature"
        now = int(self._clock.now())
        if now >= link.expires_at:
            return EXPIRED, request, "link_expired"
        if link.approver.lower() == request.owner.lower():
            return (
                Page(
                    403,
                    "You cannot decide this request",
                    "You own the agent that asked. Another approver has to decide.",
                    request,
                ),
                request,
                "owner",
            )
        if link.approver not in self._agents.group_members(request.approvers or ""):
            return (
                Page(
                    403,
                    "You are no longer an approver",
                    "You were removed from the approver group after this email was sent.",
                    request,
                ),
                request,
                "approver_removed",
            )
        if not request.is_pending(now):
            return self._outcome(request, now), request, "already_decided"
        agent = self._agents.get_client(request.client_id)
        if agent is None or not still_allowed(agent, request.scopes, request.audience):
            return (
                Page(
                    409,
                    "This request is no longer allowed",
                    "The policy changed since the agent asked: it may not hold this access any more.",
                    request,
                ),
                request,
                "policy_changed",
            )
        return (
            Page(200, "Access request", "An agent asks for elevated access.", request, can_decide=True),
            request,
            "shown",
        )

    @staticmethod
    def _outcome(request: AccessRequest, now: int | None = None) -> Page:
        status = request.status
        if status == "pending" and now is not None and now >= request.expires_at:
            return Page(
                410, "This request has expired", "Nobody decided in time; the agent may ask again.", request
            )
        if status == "approved":
            return Page(200, "Approved", f"Approved by {request.decided_by}.", request)
        return Page(200, "Denied", f"Denied by {request.decided_by}.", request)

    def _record(
        self,
        action: str,
        *,
        link: ApprovalLink,
        request: AccessRequest | None,
        page: Page,
        reason: str,
        meta: dict[str, str],
        allow: bool = False,
    ) -> AuditRecord:
        return AuditRecord(
            action=action,
            decision="allow" if allow else "deny",
            at=self._clock.now(),
            reason=reason,
            client_id=request.client_id if request else None,
            approver=link.approver[:320] if request else None,
            scope_requested=" ".join(request.scopes) if request else None,
            audience=request.audience_uri if request else None,
            http_request_id=meta.get("http_request_id"),
            source_ip=meta.get("source_ip"),
            details={"access_request": link.request_id[:64], "status": page.status},
        )
