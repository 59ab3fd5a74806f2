"""The token endpoint (RFC 6749 §3.2): dispatch on grant_type to a registered grant type.

Each grant type validates, then issues through the shared TokenIssuer; this operation only dispatches
and tells the endpoint shell what client authentication the grant type needs.
"""

from __future__ import annotations

from agent_auth.errors import InvalidRequest, UnsupportedGrantType
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.grant_types.registry import GrantType, GrantTypeRegistry, TokenContext
from agent_auth.oauth.operation import ClientAuthentication, Outcome
from agent_auth.oauth.params import Form


class TokenOperation:
    action = "token.issue"

    def __init__(self, grant_types: GrantTypeRegistry) -> None:
        self._grant_types = grant_types

    def validate(self, form: Form) -> None:
        self._grant_type(form)

    def client_authentication(self, form: Form) -> ClientAuthentication:
        return self._grant_type(form).client_authentication

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        grant_type = self._grant_type(form)
        context = TokenContext(client=client, form=form, now=now)
        return Outcome.from_token(grant_type.issue(context, grant_type.validate(context)))

    def _grant_type(self, form: Form) -> GrantType:
        name = form.get("grant_type")
        if name is None:
            raise InvalidRequest("grant_type is required", reason="missing_grant_type")
        grant_type = self._grant_types.get(name)
        if grant_type is None:
            raise UnsupportedGrantType("The grant type is not supported", reason="unsupported_grant_type")
        return grant_type
