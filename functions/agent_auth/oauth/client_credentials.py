"""The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707).

Scopes come from the agent's standing roles plus any active just-in-time grant it names; a token
drawing on a grant never outlives it, and a single-use grant is consumed by the token.
"""

from __future__ import annotations

from typing import ClassVar

from agent_auth.oauth.access_token import access_token_claims, new_token_id, sign_jwt
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.oauth.grants import TokenContext
from agent_auth.oauth.jit_grants import GrantStore, consume_single_use, usable_grants
from agent_auth.oauth.scopes import decide, parse_scope
from agent_auth.ports import Signer


class ClientCredentialsGrant:
    grant_type: ClassVar[str] = "client_credentials"

    def __init__(
        self, *, issuer: str, signer: Signer, lifetime: int, grants: GrantStore | None = None
    ) -> None:
        self._issuer = issuer
        self._signer = signer
        self._lifetime = lifetime
        self._grants = grants

    def issue(self, context: TokenContext) -> Outcome:
        client, now = context.client, context.now
        requested = parse_scope(context.form.get("scope"))
        # Agents without just-in-time rules never hold grants: skip the read (one DynamoDB read per token).
        grants = (
            usable_grants(self._grants, client.item, now)
            if self._grants is not None and requested is not None and client.item.get("jit")
            else []
        )
        decision = decide(client.item, requested, context.form.get_all("resource"), grants)
        lifetime = self._lifetime if decision.ends_at is None else min(self._lifetime, decision.ends_at - now)
        token_id = new_token_id()
        extra = {"access_request": decision.grants[0]["request_id"]} if len(decision.grants) == 1 else None
        claims = access_token_claims(
            issuer=self._issuer,
            subject=client.client_id,  # RFC 9068 §2.2: with no resource owner, sub is the client
            client_id=client.client_id,
            audience=decision.audience,
            scope=decision.scope,
            issued_at=now,
            lifetime=lifetime,
            token_id=token_id,
            extra=extra,
        )
        access_token = sign_jwt(self._signer, claims)
        if self._grants is not None:
            # After signing: a KMS failure must not use up a single-use grant.
            consume_single_use(self._grants, list(decision.grants), now)
        return Outcome(
            response={
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": decision.scope,
            },
            scope=decision.scope,
            audience=decision.audience,
            token_id=token_id,
            details={"grants": [g["grant_id"] for g in decision.grants]} if decision.grants else {},
        )
