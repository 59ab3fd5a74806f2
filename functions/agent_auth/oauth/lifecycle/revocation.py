"""Token revocation (RFC 7009) at POST /revoke, for authenticated agents only.

An agent revokes only its own tokens (§2.1: a token issued to another client is refused with
unauthorized_client). A refresh token revokes its whole family and, through the family named in their
`token_family` claim, every access token issued from it. An unknown, malformed or expired token gets
200 as if revoked (§2.2: the client cannot do anything about it, and learns nothing). Each revocation
is a record kept until the token would have expired anyway.
"""

from __future__ import annotations

from typing import Protocol

from agent_auth.errors import InvalidRequest, TemporarilyUnavailable, UnauthorizedClient
from agent_auth.oauth.authorize.stores import RefreshStore
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.jwt_verifier import JwtRejected
from agent_auth.oauth.operation import ClientAuthentication, Outcome
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.validator import AccessTokenValidator
from agent_auth.ports import Transaction, Write

FOREIGN = "The token was not issued to this client"


class RevocationWrites(Protocol):
    def revoke_token(self, token_id: str, client_id: str, expires_at: int, now: int) -> Write: ...

    def revoke_family(self, family_id: str, client_id: str, expires_at: int, now: int) -> Write: ...


class RevocationOperation:
    action = "token.revoke"

    def __init__(
        self,
        *,
        validator: AccessTokenValidator,
        refresh: RefreshStore,
        revocations: RevocationWrites,
        transaction: Transaction,
    ) -> None:
        self._validator = validator
        self._refresh = refresh
        self._revocations = revocations
        self._transaction = transaction

    def validate(self, form: Form) -> None:
        if form.get("token") is None:
            raise InvalidRequest("token is required", reason="missing_token")  # RFC 7009 §2.1

    def client_authentication(self, form: Form) -> ClientAuthentication:
        return ClientAuthentication.REQUIRED

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        # token_type_hint is only a hint (§2.1): the token's own shape says what it is.
        token = form.get("token") or ""
        family_id = opaque.family_of(token)
        if family_id is not None:
            return self._revoke_refresh(client, token, family_id, now)
        return self._revoke_access(client, token, now)

    def _revoke_refresh(self, client: AuthenticatedClient, token: str, family_id: str, now: int) -> Outcome:
        family = self._refresh.get_family(family_id)
        if family is None or opaque.digest(token) != family.current_hash:
            # Unknown, or not the family's current token (only its hash is stored, so an old one
            # cannot be told from a forged one): nothing to revoke (§2.2).
            return _nothing("unknown_refresh_token")
        if family.client_id != client.client_id:
            raise UnauthorizedClient(FOREIGN, reason="foreign_refresh_token")
        writes = [
            self._refresh.revoke_family(family_id, now),
            self._revocations.revoke_family(family_id, client.client_id, family.expires_at, now),
        ]
        if not self._transaction.commit(writes):
            return _nothing("refresh_family_gone")  # removed since it was read: nothing left to revoke
        return Outcome(
            response={},
            user=family.user,
            audience=family.audience,
            token_family=family_id,
            details={"revoked": "refresh_family"},
        )

    def _revoke_access(self, client: AuthenticatedClient, token: str, now: int) -> Outcome:
        try:
            claims = self._validator.validate(token)
        except JwtRejected as rejected:
            return _nothing(rejected.reason)  # unknown, foreign-issued or expired: 200 (§2.2)
        if claims.client_id != client.client_id:
            raise UnauthorizedClient(FOREIGN, reason="foreign_access_token")
        write = self._revocations.revoke_token(claims.token_id, client.client_id, claims.expires_at, now)
        if not self._transaction.commit([write]):
            # No condition to fail: only a concurrent write to the same record cancels it. Retry later.
            raise TemporarilyUnavailable("Service temporarily unavailable", reason="revocation_conflict")
        return Outcome(
            response={},
            audience=claims.audience,
            token_id=claims.token_id,
            token_family=claims.token_family,
            details={"revoked": "access_token"},
        )


def _nothing(reason: str) -> Outcome:
    return Outcome(response={}, details={"revoked": "nothing", "why": reason})
