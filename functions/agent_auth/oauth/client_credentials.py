"""The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707)."""

from __future__ import annotations

from typing import ClassVar

from agent_auth.oauth.access_token import access_token_claims, new_token_id, sign_jwt
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.oauth.grants import TokenContext
from agent_auth.oauth.scopes import decide, parse_scope
from agent_auth.ports import Signer


class ClientCredentialsGrant:
    grant_type: ClassVar[str] = "client_credentials"

    def __init__(self, *, issuer: str, signer: Signer, lifetime: int) -> None:
        self._issuer = issuer
        self._signer = signer
        self._lifetime = lifetime

    def issue(self, context: TokenContext) -> Outcome:
        client = context.client
        decision = decide(
            client.item, parse_scope(context.form.get("scope")), context.form.get_all("resource")
        )
        token_id = new_token_id()
        claims = access_token_claims(
            issuer=self._issuer,
            subject=client.client_id,  # RFC 9068 §2.2: with no resource owner, sub is the client
            client_id=client.client_id,
            audience=decision.audience,
            scope=decision.scope,
            issued_at=context.now,
            lifetime=self._lifetime,
            token_id=token_id,
        )
        token = sign_jwt(self._signer, claims)
        return Outcome(
            response={
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self._lifetime,
                "scope": decision.scope,
            },
            scope=decision.scope,
            audience=decision.audience,
            token_id=token_id,
        )
