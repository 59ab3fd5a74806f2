"""Telling approvers: one email per member of the rule's approver group, each with its own link.

Triggered by the access-requests table's stream (locally, the development server plays the stream).
The agent's owner is never asked: they could not decide anyway.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock
from agent_auth.jit.approval import Groups
from agent_auth.jit.email import approval_email
from agent_auth.jit.links import MacSigner, link_url, sign_link
from agent_auth.jit.requests import request_digest
from agent_auth.ports import AuditLog
from agent_auth.records import AccessRequest


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class Notifier:
    def __init__(
        self,
        *,
        issuer: str,
        sender: str,
        agents: Groups,
        mac: MacSigner,
        mailer: Mailer,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._issuer = issuer
        self._sender = sender
        self._agents = agents
        self._mac = mac
        self._mailer = mailer
        self._audit = audit
        self._clock = clock

    def notify(self, request: AccessRequest) -> list[str]:
        """Email each approver; the audit record names who was sent a link, even when a later send
        fails (the stream then retries the batch, and those approvers may get a second email)."""
        if request.status != "pending" or not request.approvers:
            return []
        owner = str(request.owner).lower()
        approvers = [a for a in self._agents.group_members(str(request.approvers)) if a.lower() != owner]
        digest = request_digest(request)
        sent: list[str] = []
        try:
            for approver in approvers:
                link = sign_link(
                    self._mac,
                    request_id=request.request_id,
                    approver=approver,
                    digest=digest,
                    expires_at=int(request.expires_at),
                )
                self._mailer.send(
                    approval_email(
                        sender=self._sender,
                        approver=approver,
                        request=request,
                        link=link_url(self._issuer, link),
                        now=self._clock.now(),
                    )
                )
                sent.append(approver)
        finally:
            failed = len(sent) < len(approvers)
            self._audit.write(
                AuditRecord(
                    action="approval.notify",
                    decision="allow" if sent and not failed else "deny",
                    at=self._clock.now(),
                    reason="send_failed" if failed else (None if approvers else "no_approvers"),
                    client_id=request.client_id,
                    scope_requested=" ".join(request.scopes),
                    details={
                        "access_request": request.request_id,
                        "sent_to": sent,
                        "group": request.approvers,
                    },
                )
            )
        return sent
