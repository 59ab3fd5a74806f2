"""The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707).

Scopes come from the agent's standing roles plus any active JIT grant it names; a token drawing on a
JIT grant never outlives it, and a single-use grant is consumed by the token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Protocol

from agent_auth import schema
from agent_auth.oauth.grant_types.registry import IssuingGrantType, TokenContext
from agent_auth.oauth.scopes import decide, parse_scope
from agent_auth.oauth.tokens.access_token import ACCESS_REQUEST_CLAIM, ACCESS_REQUESTS_CLAIM
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.records import Agent, JitGrant


class Elevations(Protocol):
    """The agent's JIT grants, as the token path needs them (implemented in jit/grants.py)."""

    def usable(self, agent: Agent, now: int) -> list[JitGrant]:
        """The grants a token may draw on now (one read)."""
        ...

    def consume_single_use(self, grants: Sequence[JitGrant], now: int) -> None:
        """Use up the single-use ones; InvalidGrant when another token already did."""
        ...


class ClientCredentialsGrant(IssuingGrantType):
    grant_type: ClassVar[str] = "client_credentials"
    # adapters.jit_tables.GrantTable: grants_of (Query) and consume (UpdateItem).
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {
        schema.GRANTS.logical_name: ("dynamodb:Query", "dynamodb:UpdateItem")
    }

    def __init__(self, issuer: TokenIssuer, elevations: Elevations | None = None) -> None:
        super().__init__(issuer)
        self._elevations = elevations

    def validate(self, context: TokenContext) -> Issuance:
        agent, now = context.client.agent, context.now
        requested = parse_scope(context.form.get("scope"))
        # Agents without just-in-time rules never hold grants: skip the read (one DynamoDB read per token).
        grants = (
            self._elevations.usable(agent, now)
            if self._elevations is not None and requested is not None and agent.jit
            else []
        )
        decision = decide(agent, requested, context.form.get_all("resource"), grants)
        drawn = decision.grants
        return Issuance(
            subject=agent.client_id,  # RFC 9068 §2.2: with no resource owner, sub is the client
            client_id=agent.client_id,
            audience=decision.audience,
            scopes=decision.scopes,
            not_after=decision.ends_at,
            extra=_grant_claims(drawn),
            details={"grants": [g.grant_id for g in drawn]} if drawn else {},
            jit_grants=drawn,
        )

    def after_signing(self, context: TokenContext, issuance: Issuance) -> None:
        if self._elevations is not None:
            self._elevations.consume_single_use(issuance.jit_grants, context.now)


def _grant_claims(drawn: Sequence[JitGrant]) -> dict[str, object]:
    """Name the JIT grants the token draws on, so revoking any of them makes it inactive."""
    if len(drawn) == 1:
        return {ACCESS_REQUEST_CLAIM: drawn[0].request_id}
    return {ACCESS_REQUESTS_CLAIM: [g.request_id for g in drawn]} if drawn else {}
