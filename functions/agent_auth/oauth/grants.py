"""Grants as small classes registered by `grant_type` (authlib's registry, fosite's handlers).

Adding a grant (token exchange, the access-request poll) is a new class in this registry, not a new
branch in the token endpoint. Each grant validates, then issues; the endpoint authenticates the client
and writes the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.web.forms import Form


@dataclass(frozen=True)
class TokenContext:
    client: AuthenticatedClient
    form: Form
    now: int


@dataclass(frozen=True)
class IssuedToken:
    response: dict[str, object]
    """The RFC 6749 §5.1 body."""
    scope: str
    audience: str
    token_id: str
    details: dict[str, object] = field(default_factory=dict)


class Grant(Protocol):
    grant_type: ClassVar[str]

    def issue(self, context: TokenContext) -> IssuedToken: ...


class GrantRegistry:
    def __init__(self, *grants: Grant) -> None:
        self._grants = {g.grant_type: g for g in grants}

    def get(self, grant_type: str) -> Grant | None:
        return self._grants.get(grant_type)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self._grants)
