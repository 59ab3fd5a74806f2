"""What a client endpoint runs once the request is parsed: an operation, and the outcome it reports.

The HTTP shell (web/client_endpoint.py) parses, authenticates as the operation asks, runs it and writes
the one audit record from the outcome; the operation itself knows nothing of HTTP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens.issuer import IssuedToken


class ClientAuthentication(enum.Enum):
    """What an operation needs from the client (fosite's CanSkipClientAuth, made explicit)."""

    REQUIRED = "required"
    """A secret or a signed assertion; public agents are refused."""
    PUBLIC_ALLOWED = "public_allowed"
    """Confidential agents authenticate; a public agent (`auth: none`) names itself with client_id and
    is proven by the grant instead (PKCE)."""


@dataclass(frozen=True)
class Outcome:
    response: dict[str, object]
    status: int = 200
    scope: str | None = None
    audience: str | None = None
    token_id: str | None = None
    user: str | None = None
    act: Mapping[str, Any] | None = None
    token_family: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_token(cls, issued: IssuedToken) -> Outcome:
        issuance = issued.issuance
        return cls(
            response=issued.response(),
            scope=issuance.scope,
            audience=issuance.audience,
            token_id=issued.token_id,
            user=issuance.user,
            act=issuance.act,
            token_family=issuance.token_family,
            details=issuance.details,
        )


class ClientOperation(Protocol):
    action: str
    """The audit record's action, e.g. token.issue."""

    def validate(self, form: Form) -> None:
        """Stateless checks that need no client (e.g. a supported grant_type)."""
        ...

    def client_authentication(self, form: Form) -> ClientAuthentication: ...

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome: ...
