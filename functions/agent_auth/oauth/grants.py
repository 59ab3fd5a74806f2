"""Grants as small classes registered by `grant_type` (authlib's registry, fosite's handlers).

Adding a grant (token exchange, the access-request poll) is a new class in this registry, not a new
branch in the token endpoint. Each grant validates, then issues; the endpoint authenticates the client
and writes the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.web.forms import Form


@dataclass(frozen=True)
class TokenContext:
    client: AuthenticatedClient
    form: Form
    now: int


class Grant(Protocol):
    grant_type: ClassVar[str]

    def issue(self, context: TokenContext) -> Outcome: ...


class GrantRegistry:
    def __init__(self, *grants: Grant) -> None:
        self._grants = {g.grant_type: g for g in grants}

    def get(self, grant_type: str) -> Grant | None:
        return self._grants.get(grant_type)

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self._grants)
