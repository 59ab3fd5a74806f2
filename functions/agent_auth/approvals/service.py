"""Viewing and deciding an access request from its signed link.

GET only looks (mail scanners fetch links): it verifies the link and describes the request. A decision
is a POST, checked again from scratch, and one conditional transaction moves the request from pending
to approved or denied, writes the grant and the audit record. A second click, or the loser of a race,
sees the outcome. The agent's owner cannot decide; an approver removed from the group since the email
was sent cannot either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_auth.approvals.links import ApprovalLink, MacVerifier, link_message
from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock
from agent_auth.oauth.access_requests import grant_for, request_digest
from agent_auth.oauth.jit_grants import still_allowed


class ApprovalRequests(Protocol):
    def get_request(self, request_id: str) -> dict[str, Any] | None: ...

    def decide(
        self,
        request_id: str,
        *,
        status: str,
        approver: str,
        now: int,
        grant: dict[str, Any] | None,
        audit: dict[str, Any],
    ) -> bool: ...


class Groups(Protocol):
    def group_members(self, group: str) -> list[str]: ...


class PolicyReader(Groups, Protocol):
    def get_client(self, client_id: str) -> dict[str, Any] | None: ...


class ApprovalAudit(Protocol):
    def write(self, record: AuditRecord) -> None: ...

    def transact_put(self, record: AuditRecord) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Page:
    """What the approver sees. `can_decide` shows the Approve / Deny form."""

    status: int
    title: str
    message: str
    request: dict[str, Any] | None = None
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
        agents: PolicyReader,
        mac: MacVerifier,
        audit: ApprovalAudit,
        clock: Clock,
    ) -> None:
        self._requests = requests
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
                request_id=meta.get("request_id"),
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
        status = "approved" if decision == "approve" else "denied"
        decided = {**request, "status": status, "decided_by": link.approver, "decided_at": now}
        grant = grant_for(decided, now) if status == "approved" else None
        outcome = self._outcome(decided)
        record = self._record(
            "approval.decide", link=link, request=request, page=outcome, reason=status, meta=meta, allow=True
        )
        if self._requests.decide(
            request["request_id"],
            status=status,
            approver=link.approver,
            now=now,
            grant=grant,
            audit=self._audit.transact_put(record),
        ):
            return outcome
        # Someone else decided first (or it expired in between): show what happened.
        current = self._requests.get_request(request["request_id"]) or request
        page = self._outcome(current, now)
        if current["status"] == "pending" and now < int(current["expires_at"]):
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

    def _check(self, link: ApprovalLink) -> tuple[Page, dict[str, Any] | None, str]:
        request = self._requests.get_request(link.request_id) if len(link.request_id) <= 64 else None
        if request is None:
            return INVALID, None, "unknown_request"
        message = link_message(link.request_id, link.approver, request_digest(request), link.expires_at)
        if not self._mac.verify_mac(message, link.signature):
            return INVALID, None, "bad_signature"
        now = int(self._clock.now())
        if now >= link.expires_at:
            return EXPIRED, request, "link_expired"
        if link.approver.lower() == str(request["owner"]).lower():
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
        if link.approver not in self._agents.group_members(str(request.get("approvers") or "")):
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
        if request["status"] != "pending" or now >= int(request["expires_at"]):
            return self._outcome(request, now), request, "already_decided"
        agent = self._agents.get_client(str(request["client_id"]))
        if agent is None or not still_allowed(agent, request):
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
    def _outcome(request: dict[str, Any], now: int | None = None) -> Page:
        status = request["status"]
        if status == "pending" and now is not None and now >= int(request["expires_at"]):
            return Page(
                410, "This request has expired", "Nobody decided in time; the agent may ask again.", request
            )
        if status == "approved":
            return Page(200, "Approved", f"Approved by {request.get('decided_by')}.", request)
        return Page(200, "Denied", f"Denied by {request.get('decided_by')}.", request)

    def _record(
        self,
        action: str,
        *,
        link: ApprovalLink,
        request: dict[str, Any] | None,
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
            client_id=request["client_id"] if request else None,
            approver=link.approver[:320] if request else None,
            scope_requested=" ".join(request["scopes"]) if request else None,
            audience=request.get("audience_uri") if request else None,
            request_id=meta.get("request_id"),
            source_ip=meta.get("source_ip"),
            details={"access_request": link.request_id[:64], "status": page.status},
        )
