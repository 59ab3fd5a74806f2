"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

Every use returns a new refresh token and retires the one presented, by one conditional write, so two
concurrent refreshes have exactly one winner. A retired token presented again means it leaked (or a
race was lost): the whole family is revoked, as fosite and Auth0 do, and the agent must send the user
through /authorize again. A refresh never widens scope or changes the audience, and stops working once
the user's consent is withdrawn or the agent may no longer act for users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar, Protocol

from agent_auth import schema
from agent_auth.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from agent_auth.oauth.authorize.stores import ConsentStore, RefreshStore
from agent_auth.oauth.grant_types.registry import IssuingGrantType, TokenContext
from agent_auth.oauth.operation import ClientAuthentication
from agent_auth.oauth.scopes import parse_scope
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.issuer import Issuance, IssuedToken, TokenIssuer
from agent_auth.ports import Transaction, Write

INVALID = "The refresh token is invalid"


class FamilyRevocations(Protocol):
    """The revocations table (adapters.revocations.RevocationTable), where introspection and exchange
    look up a token's family."""

    def revoke_family(self, family_id: str, client_id: str, expires_at: int, now: int) -> Write: ...


class RefreshTokenGrant(IssuingGrantType):
    grant_type: ClassVar[str] = "refresh_token"
    client_authentication: ClassVar[ClientAuthentication] = ClientAuthentication.PUBLIC_ALLOWED
    # RefreshTable.get_family / rotate / revoke_family; ConsentTable.get_consent; on reuse,
    # RevocationTable.revoke_family in the same transaction.
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {
        schema.REFRESH.logical_name: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        schema.CONSENTS.logical_name: ("dynamodb:GetItem",),
        schema.REVOCATIONS.logical_name: ("dynamodb:PutItem",),
    }

    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        refresh: RefreshStore,
        consents: ConsentStore,
        transaction: Transaction,
        revocations: FamilyRevocations,
    ) -> None:
        super().__init__(issuer)
        self._refresh = refresh
        self._consents = consents
        self._transaction = transaction
        self._revocations = revocations

    def _revoke(self, family_id: str, client_id: str, expires_at: int, now: int) -> None:
        """Ends the family and, in the same transaction, records it where introspection and exchange
        look, so the access tokens it issued stop too (they never outlive the family: `not_after`)."""
        self._transaction.commit(
            [
                self._refresh.revoke_family(family_id, now),
                self._revocations.revoke_family(family_id, client_id, expires_at, now),
            ]
        )

    def validate(self, context: TokenContext) -> Issuance:
        form, agent, now = context.form, context.client.agent, context.now
        presented = form.get("refresh_token")
        if presented is None:
            raise InvalidRequest("refresh_token is required", reason="missing_refresh_token")
        family_id = opaque.family_of(presented)
        family = self._refresh.get_family(family_id) if family_id else None
        if family is None or family.client_id != agent.client_id:
            raise InvalidGrant(INVALID, reason="unknown_or_foreign_refresh_token")
        if family.revoked or now >= family.expires_at:
            raise InvalidGrant(INVALID, reason="refresh_family_ended")
        if agent.token_revoked(family.created_at):
            # Begun before the agent's last disable: the kill switch ended it, and enable does not undo that.
            raise InvalidGrant(INVALID, reason="refresh_family_revoked_by_disable")
        if opaque.digest(presented) != family.current_hash:
            self._revoke(family.family_id, agent.client_id, family.expires_at, now)
            raise InvalidGrant(INVALID, reason="refresh_token_reused_family_revoked")
        if agent.delegation is None:
            raise InvalidGrant(INVALID, reason="delegation_removed")
        if agent.delegation.consent == "remember":
            consent = self._consents.get_consent(family.user, agent.client_id)
            if consent is None or consent.revoked:
                raise InvalidGrant(INVALID, reason="consent_withdrawn")
            # A consent given again after a withdrawal does not bring back the families it ended.
            if consent.withdrawn_at is not None and family.created_at <= consent.withdrawn_at:
                raise InvalidGrant(INVALID, reason="consent_withdrawn")
        scopes = family.scopes
        requested = parse_scope(form.get("scope"))
        if requested is not None:
            if not set(requested) <= set(family.scopes):
                raise InvalidScope(
                    "The requested scope exceeds what was granted", reason="refresh_wider_scope"
                )
            scopes = tuple(s for s in family.scopes if s in requested)
        resources = form.get_all("resource")
        if len(resources) > 1 or (resources and resources[0] != family.audience):
            raise InvalidTarget(
                "The resource is not the one this grant is for", reason="refresh_other_resource"
            )
        return Issuance(
            subject=family.user,
            client_id=agent.client_id,
            audience=family.audience,
            scopes=scopes,
            not_after=family.expires_at,
            user=family.user,
            token_family=family.family_id,
            details={"generation": family.generation + 1, "presented_hash": family.current_hash},
        )

    def issue(self, context: TokenContext, issuance: Issuance) -> IssuedToken:
        issued = super().issue(context, issuance)
        assert issuance.token_family is not None
        new_token = opaque.new_refresh_token(issuance.token_family)
        presented_hash = str(issuance.details["presented_hash"])
        # After signing: a KMS failure leaves the presented token current. The condition makes one of
        # two concurrent refreshes win; the loser presented a token that is no longer current.
        if not self._refresh.rotate(
            issuance.token_family, presented_hash, opaque.digest(new_token), context.now
        ):
            assert issuance.not_after is not None  # the family's end (validate)
            self._revoke(issuance.token_family, issuance.client_id, issuance.not_after, context.now)
            raise InvalidGrant(INVALID, reason="refresh_race_lost_family_revoked")
        audited = replace(issuance, details={"generation": issuance.details["generation"]})
        return replace(issued, issuance=audited, extra_response={"refresh_token": new_token})
