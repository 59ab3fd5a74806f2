"""Token introspection (RFC 7662) at POST /introspect, for authenticated agents only.

An agent may introspect its own tokens, and tokens for an audience whose `resource_servers` name it
(RFC 7662 §4: the server decides who may learn what about a token; without that check any client could
read any token's claims, Keycloak CVE-2026-37979). Everything else, like an expired, revoked, unknown,
foreign or malformed token, or one of a disabled agent, is `{"active": false}` and nothing more
(RFC 7662 §2.2), so the answer tells a caller nothing about tokens that are not its business.
"""

from __future__ import annotations

from typing import Any

from agent_auth.errors import InvalidRequest
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.jwt_verifier import JwtRejected
from agent_auth.oauth.operation import ClientAuthentication, Outcome
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens.validator import AccessTokenClaims, AccessTokenValidator, TokenStatusReader
from agent_auth.records import JitGrant

INACTIVE: dict[str, object] = {"active": False}


class _Inactive(Exception):
    def __init__(self, reason: str, token_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_id = token_id
        """Only for a token we signed: an id of ours, never what was sent."""


class IntrospectionOperation:
    action = "token.introspect"

    def __init__(self, *, validator: AccessTokenValidator, status: TokenStatusReader) -> None:
        self._validator = validator
        self._status = status

    def validate(self, form: Form) -> None:
        if form.get("token") is None:
            raise InvalidRequest("token is required", reason="missing_token")  # RFC 7662 §2.1

    def client_authentication(self, form: Form) -> ClientAuthentication:
        return ClientAuthentication.REQUIRED

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        try:
            claims, grants = self._active(client, form.get("token") or "", now)
        except _Inactive as inactive:
            return Outcome(
                response=dict(INACTIVE),
                token_id=inactive.token_id,
                details={"active": False, "why": inactive.reason},
            )
        response: dict[str, Any] = {"active": True, **claims.claims, "token_type": "Bearer"}
        if grants:
            response["jit_grants"] = [_grant(g) for g in grants]
        return Outcome(
            response=response,
            scope=" ".join(claims.scopes),
            audience=claims.audience,
            token_id=claims.token_id,
            act=claims.act,
            details={"active": True, "token_client": claims.client_id},
        )

    def _active(
        self, client: AuthenticatedClient, token: str, now: int
    ) -> tuple[AccessTokenClaims, tuple[JitGrant, ...]]:
        try:
            claims = self._validator.validate(token)  # signature, typ, issuer, expiry: no read
        except JwtRejected as rejected:
            raise _Inactive(rejected.reason) from rejected
        own = claims.client_id == client.client_id
        if not own and claims.audience not in client.agent.serves.values():
            raise _Inactive("not_callers_token", claims.token_id)
        if claims.expires_at <= now:
            # Within the validator's clock skew, but past exp: not active (RFC 7662 §2.2).
            raise _Inactive("expired", claims.token_id)
        status = self._status.status(claims.claims, now)
        if status.revoked is not None:
            raise _Inactive(status.revoked, claims.token_id)
        return claims, status.jit_grants


def _grant(grant: JitGrant) -> dict[str, object]:
    """The just-in-time grant behind the token: who approved what, until when."""
    return {
        "grant_id": grant.grant_id,
        "scope": " ".join(grant.scopes),
        "aud": grant.audience_uri,
        "starts_at": grant.starts_at,
        "ends_at": grant.ends_at,
        "approved_by": grant.approved_by,
        "single_use": grant.single_use,
    }
