"""Polling for an access request at the token endpoint, as in CIBA poll mode (CIBA §7.3, §11).

grant_type=urn:agent-auth:grant-type:access-request with the request_id. Only the requesting agent may
poll; the answer is authorization_pending, slow_down (faster than the interval), access_denied,
expired_token, or the elevated token, whose exp never passes the JIT grant's end.

The agent's and the approver's state are checked again when the token is redeemed, not only when the
request was made or decided (Keycloak CVE-2026-16103): a disabled agent is refused by the endpoint
shell, a grant from before the agent's last disable has ended, and so has one whose approver has since
left the approver group or become the agent's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from agent_auth import schema
from agent_auth.errors import (
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    PollAccessDenied,
    SlowDown,
)
from agent_auth.jit.grants import GrantStore, consume_single_use, still_allowed
from agent_auth.jit.requests import POLL_INTERVAL
from agent_auth.oauth.grant_types.registry import IssuingGrantType, TokenContext
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.records import AccessRequest

ACCESS_REQUEST_GRANT = "urn:agent-auth:grant-type:access-request"


class RequestPoller(Protocol):
    def get_request(self, request_id: str) -> AccessRequest | None: ...

    def note_poll(self, request_id: str, now: int, interval: int) -> bool:
        """Record this poll; False when the previous one was less than `interval` seconds ago."""
        ...


class ApproverDirectory(Protocol):
    def group_members(self, group: str) -> list[str]:
        """The approver group as applied now (one read)."""
        ...


class AccessRequestGrant(IssuingGrantType):
    grant_type: ClassVar[str] = ACCESS_REQUEST_GRANT
    # RequestTable.get_request / note_poll; GrantTable.get_grant / consume. AgentTable.group_members is
    # a GetItem on the agents table, which every client endpoint already has (reading the agent).
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {
        schema.REQUESTS.logical_name: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        schema.GRANTS.logical_name: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    }

    def __init__(
        self,
        issuer: TokenIssuer,
        requests: RequestPoller,
        grants: GrantStore,
        approvers: ApproverDirectory | None = None,
    ) -> None:
        super().__init__(issuer)
        self._requests = requests
        self._grants = grants
        self._approvers = approvers
        """None only in unit tests that predate the re-check; wiring always passes one."""

    def validate(self, context: TokenContext) -> Issuance:
        request_id = context.form.get("request_id")
        if request_id is None:
            raise InvalidRequest("request_id is required", reason="missing_request_id")
        agent, now = context.client.agent, context.now
        request = self._requests.get_request(request_id) if len(request_id) <= 64 else None
        if request is None or request.client_id != agent.client_id:
            # Another agent's request looks exactly like one that does not exist.
            raise InvalidGrant("Unknown access request", reason="unknown_or_foreign_request")
        if request.status == "denied":
            raise PollAccessDenied("The access request was denied", reason="request_denied")
        if request.status == "pending":
            if now >= request.expires_at:
                raise ExpiredToken("The access request expired", reason="request_expired")
            if not self._requests.note_poll(request_id, now, POLL_INTERVAL):
                raise SlowDown("Polling too fast", reason="slow_down")
            raise AuthorizationPending("The access request is waiting for approval", reason="pending")
        grant = self._grants.get_grant(agent.client_id, request_id)
        if grant is None or not grant.is_usable(now):
            raise InvalidGrant("The granted access has ended", reason="grant_ended")
        if not still_allowed(agent, grant.scopes, grant.audience):
            raise InvalidGrant("The granted access has ended", reason="grant_no_longer_allowed")
        if agent.token_revoked(grant.starts_at):
            raise InvalidGrant("The granted access has ended", reason="grant_revoked_by_disable")
        if not self._approver_still_may(request, grant.approved_by, agent.owner):
            raise InvalidGrant("The granted access has ended", reason="approver_no_longer_allowed")
        return Issuance(
            subject=agent.client_id,
            client_id=agent.client_id,
            audience=grant.audience_uri,
            scopes=grant.scopes,
            not_after=grant.ends_at,
            extra={"access_request": request_id, "approved_by": grant.approved_by},
            details={"access_request": request_id, "grant_ends_at": grant.ends_at},
            jit_grants=(grant,),
        )

    def _approver_still_may(self, request: AccessRequest, approver: str | None, owner: str) -> bool:
        """An auto-approved grant has no approver to check; a human's approval counts only while that
        human is still in the request's approver group and does not own the agent."""
        if request.approvers is None or self._approvers is None:
            return True
        if approver is None or approver.lower() == owner.lower():
            return False
        members = {m.lower() for m in self._approvers.group_members(request.approvers)}
        return approver.lower() in members

    def after_signing(self, context: TokenContext, issuance: Issuance) -> None:
        consume_single_use(self._grants, issuance.jit_grants, context.now)
