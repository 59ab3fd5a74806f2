"""The token endpoint (RFC 6749 §3.2): dispatch on grant_type to a registered grant."""

from __future__ import annotations

from agent_auth.errors import InvalidRequest, UnsupportedGrantType
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.oauth.grants import GrantRegistry, TokenContext
from agent_auth.web.forms import Form


class TokenOperation:
    action = "token.issue"

    def __init__(self, grants: GrantRegistry) -> None:
        self._grants = grants

    def validate(self, form: Form) -> None:
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required", reason="missing_grant_type")
        if self._grants.get(grant_type) is None:
            raise UnsupportedGrantType("The grant type is not supported", reason="unsupported_grant_type")

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        grant = self._grants.get(form.get("grant_type") or "")
        assert grant is not None  # validate() ran first
        return grant.issue(TokenContext(client=client, form=form, now=now))
