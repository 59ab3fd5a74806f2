"""Grant types as small classes registered by `grant_type` (authlib's registry, fosite's handlers).

Each grant type validates (checks the request and decides an `Issuance`), then issues through the one
`TokenIssuer`. It also declares whether a public agent may use it and which table access it needs, so
the registry, the metadata and the token function's IAM policy all come from one list
(agent_auth/grant_catalog.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.operation import ClientAuthentication
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens.issuer import Issuance, IssuedToken, TokenIssuer


@dataclass(frozen=True)
class TokenContext:
    client: AuthenticatedClient
    form: Form
    now: int


class GrantType(Protocol):
    grant_type: ClassVar[str]
    client_authentication: ClassVar[ClientAuthentication]
    table_access: ClassVar[Mapping[str, tuple[str, ...]]]
    """Table logical name (agent_auth.schema) -> the DynamoDB actions this grant type's stores call."""

    def validate(self, context: TokenContext) -> Issuance:
        """Every check, and every read, before anything is signed. Raises an OAuthError."""
        ...

    def issue(self, context: TokenContext, issuance: Issuance) -> IssuedToken:
        """Sign, then whatever must follow a signed token (e.g. consuming a single-use grant)."""
        ...


class IssuingGrantType:
    """The common issue step: sign the issuance. Grant types override `after_signing` when needed."""

    client_authentication: ClassVar[ClientAuthentication] = ClientAuthentication.REQUIRED
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(self, issuer: TokenIssuer) -> None:
        self._issuer = issuer

    def issue(self, context: TokenContext, issuance: Issuance) -> IssuedToken:
        issued = self._issuer.issue(issuance, context.now)
        self.after_signing(context, issuance)
        return issued

    def after_signing(self, context: TokenContext, issuance: Issuance) -> None:
        """After signing, so a KMS failure changes nothing."""


class GrantTypeRegistry:
    def __init__(self, *grant_types: GrantType) -> None:
        self._grant_types = {g.grant_type: g for g in grant_types}

    def get(self, grant_type: str) -> GrantType | None:
        return self._grant_types.get(grant_type)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self._grant_types)
