"""The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.5-4.6), for delegated access.

A code is redeemed once, by one conditional write, within 60 seconds, by the client it was issued to,
with the redirect URI it was issued for and the verifier of its challenge. A second redemption fails
and revokes what the first produced (RFC 6749 §4.1.2, RFC 9700 §4.2.4). Public agents (`auth: none`)
may redeem: PKCE is what proves them.

The access token's `sub` is the user and its `client_id` the agent; `offline_access` yields a refresh
token (a new family), `openid` an ID token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from agent_auth import schema
from agent_auth.errors import InvalidGrant, InvalidRequest, InvalidTarget
from agent_auth.oauth.authorize.pkce import verifier_matches
from agent_auth.oauth.authorize.request import OFFLINE_ACCESS, OPENID, same_resource
from agent_auth.oauth.authorize.stores import CodeStore, RefreshStore
from agent_auth.oauth.grant_types.registry import IssuingGrantType, TokenContext
from agent_auth.oauth.operation import ClientAuthentication
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.issuer import IdTokenRequest, Issuance, IssuedToken, TokenIssuer
from agent_auth.ports import Transaction
from agent_auth.records import RefreshFamily

REFRESH_LIFETIME = 30 * 86400
"""A refresh family lives at most 30 days from the sign-in, however often it rotates."""


class AuthorizationCodeGrant(IssuingGrantType):
    grant_type: ClassVar[str] = "authorization_code"
    client_authentication: ClassVar[ClientAuthentication] = ClientAuthentication.PUBLIC_ALLOWED
    # CodeTable.redeem_code / get_code (UpdateItem, GetItem); RefreshTable.put_family / revoke_family
    # through the transaction (PutItem, UpdateItem).
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {
        schema.CODES.logical_name: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        schema.REFRESH.logical_name: ("dynamodb:PutItem", "dynamodb:UpdateItem"),
    }

    def __init__(
        self, issuer: TokenIssuer, *, codes: CodeStore, refresh: RefreshStore, transaction: Transaction
    ) -> None:
        super().__init__(issuer)
        self._codes = codes
        self._refresh = refresh
        self._transaction = transaction

    def validate(self, context: TokenContext) -> Issuance:
        form, agent, now = context.form, context.client.agent, context.now
        code, redirect_uri, verifier = form.get("code"), form.get("redirect_uri"), form.get("code_verifier")
        if code is None or redirect_uri is None:
            raise InvalidRequest("code and redirect_uri are required", reason="missing_code_parameters")
        if verifier is None:
            raise InvalidRequest("code_verifier is required", reason="missing_code_verifier")
        if not opaque.well_formed_code(code):
            raise InvalidGrant("The authorization code is invalid", reason="malformed_code")
        code_hash = opaque.digest(code)
        redeemed = self._codes.redeem_code(code_hash, now)
        if redeemed is None:
            self._refuse_reuse(code_hash, now)
            raise InvalidGrant("The authorization code is invalid", reason="unknown_or_expired_code")
        if redeemed.client_id != agent.client_id:
            raise InvalidGrant("The authorization code is invalid", reason="code_of_another_client")
        if agent.token_revoked(redeemed.created_at):
            raise InvalidGrant("The authorization code is invalid", reason="code_revoked_by_disable")
        if redeemed.redirect_uri != redirect_uri:
            raise InvalidGrant("The authorization code is invalid", reason="redirect_uri_mismatch")
        if not verifier_matches(verifier, redeemed.code_challenge):
            raise InvalidGrant("The authorization code is invalid", reason="pkce_verifier_mismatch")
        resources = form.get_all("resource")
        if len(resources) > 1 or (resources and not same_resource(resources[0], redeemed.audience)):
            # RFC 8707 §2.2: the code was issued for one audience; the token cannot name another.
            raise InvalidTarget("The resource is not the one this code is for", reason="code_other_resource")
        if agent.delegation is None:
            raise InvalidGrant("The authorization code is invalid", reason="delegation_removed")
        offline = OFFLINE_ACCESS in redeemed.scopes and agent.delegation.offline_access
        return Issuance(
            subject=redeemed.user,
            client_id=agent.client_id,
            audience=redeemed.audience,
            scopes=redeemed.scopes,
            user=redeemed.user,
            token_family=redeemed.family_id if offline else None,
            id_token=IdTokenRequest(redeemed.nonce) if OPENID in redeemed.scopes else None,
            details={"refresh_token": offline},
        )

    def _refuse_reuse(self, code_hash: str, now: int) -> None:
        """A code presented again after its redemption: whoever has it now is not to be trusted with
        what the first redemption produced (RFC 6749 §4.1.2)."""
        stored = self._codes.get_code(code_hash)
        if stored is not None and stored.redeemed:
            self._transaction.commit([self._refresh.revoke_family(stored.family_id, now)])
            raise InvalidGrant("The authorization code is invalid", reason="code_reused_family_revoked")

    def issue(self, context: TokenContext, issuance: Issuance) -> IssuedToken:
        issued = super().issue(context, issuance)
        extra: dict[str, str] = {}
        if issuance.id_token is not None:
            extra["id_token"] = self._issuer.id_token(
                user=issuance.subject,
                client_id=issuance.client_id,
                nonce=issuance.id_token.nonce,
                now=context.now,
            )
        if issuance.token_family is not None:
            # After signing, so a KMS failure leaves no family behind.
            refresh_token = opaque.new_refresh_token(issuance.token_family)
            family = RefreshFamily(
                family_id=issuance.token_family,
                client_id=issuance.client_id,
                user=issuance.subject,
                audience=issuance.audience,
                scopes=issuance.scopes,
                current_hash=opaque.digest(refresh_token),
                generation=1,
                created_at=context.now,
                expires_at=context.now + REFRESH_LIFETIME,
            )
            if not self._transaction.commit([self._refresh.put_family(family)]):
                raise InvalidGrant("The authorization code is invalid", reason="family_exists")
            extra["refresh_token"] = refresh_token
        return replace(issued, extra_response=extra)
