"""Polling for an access request at the token endpoint, as in CIBA poll mode (CIBA §7.3, §11).

grant_type=urn:agent-auth:grant-type:access-request with the request_id. Only the requesting agent may
poll; the answer is authorization_pending, slow_down (faster than the interval), access_denied,
expired_token, or the elevated token, whose exp never passes the grant's end.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from agent_auth.errors import (
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    PollAccessDenied,
    SlowDown,
)
from agent_auth.oauth.access_requests import POLL_INTERVAL
from agent_auth.oauth.access_token import access_token_claims, new_token_id, sign_jwt
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.oauth.grants import TokenContext
from agent_auth.oauth.jit_grants import GrantStore, consume_single_use, is_usable, still_allowed
from agent_auth.ports import Signer

ACCESS_REQUEST_GRANT = "urn:agent-auth:grant-type:access-request"


class RequestPoller(Protocol):
    def get_request(self, request_id: str) -> dict[str, Any] | None: ...

    def note_poll(self, request_id: str, now: int, interval: int) -> bool:
        """Record this poll; False when the previous one was less than `interval` seconds ago."""
        ...


class AccessRequestGrant:
    grant_type: ClassVar[str] = ACCESS_REQUEST_GRANT

    def __init__(
        self, *, issuer: str, signer: Signer, lifetime: int, requests: RequestPoller, grants: GrantStore
    ) -> None:
        self._issuer = issuer
        self._signer = signer
        self._lifetime = lifetime
        self._requests = requests
        self._grants = grants

    def issue(self, context: TokenContext) -> Outcome:
        request_id = context.form.get("request_id")
        if request_id is None:
            raise InvalidRequest("request_id is required", reason="missing_request_id")
        client, now = context.client, context.now
        request = self._requests.get_request(request_id) if len(request_id) <= 64 else None
        if request is None or request["client_id"] != client.client_id:
            # Another agent's request looks exactly like one that does not exist.
            raise InvalidGrant("Unknown access request", reason="unknown_or_foreign_request")
        status = request["status"]
        if status == "denied":
            raise PollAccessDenied("The access request was denied", reason="request_denied")
        if status == "pending":
            if now >= int(request["expires_at"]):
                raise ExpiredToken("The access request expired", reason="request_expired")
            if not self._requests.note_poll(request_id, now, POLL_INTERVAL):
                raise SlowDown("Polling too fast", reason="slow_down")
            raise AuthorizationPending("The access request is waiting for approval", reason="pending")
        grant = self._grants.get_grant(client.client_id, request_id)
        if grant is None or not is_usable(grant, now):
            raise InvalidGrant("The granted access has ended", reason="grant_ended")
        if not still_allowed(client.item, grant):
            raise InvalidGrant("The granted access has ended", reason="grant_no_longer_allowed")
        lifetime = min(self._lifetime, int(grant["ends_at"]) - now)
        token_id = new_token_id()
        scope = " ".join(grant["scopes"])
        claims = access_token_claims(
            issuer=self._issuer,
            subject=client.client_id,
            client_id=client.client_id,
            audience=grant["audience_uri"],
            scope=scope,
            issued_at=now,
            lifetime=lifetime,
            token_id=token_id,
            extra={"access_request": request_id, "approved_by": grant.get("approved_by")},
        )
        access_token = sign_jwt(self._signer, claims)
        consume_single_use(self._grants, [grant], now)  # after signing: a KMS failure keeps the grant
        return Outcome(
            response={
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": scope,
            },
            scope=scope,
            audience=grant["audience_uri"],
            token_id=token_id,
            details={"access_request": request_id, "grant_ends_at": int(grant["ends_at"])},
        )
