"""The one list of grant types the token endpoint serves.

The registry (wiring.py), the discovery metadata (handlers/wellknown.py) and the token function's IAM
policy (infra) are all derived from it, so a new grant type is one class and one line here.
"""

from __future__ import annotations

from agent_auth.jit.polling import AccessRequestGrant
from agent_auth.oauth.grant_types.authorization_code import AuthorizationCodeGrant
from agent_auth.oauth.grant_types.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.grant_types.refresh_token import RefreshTokenGrant
from agent_auth.oauth.grant_types.token_exchange import TokenExchangeGrant

GRANT_TYPES = (
    ClientCredentialsGrant,
    AccessRequestGrant,
    AuthorizationCodeGrant,
    RefreshTokenGrant,
    TokenExchangeGrant,
)


def grant_type_names() -> tuple[str, ...]:
    return tuple(g.grant_type for g in GRANT_TYPES)


def token_table_access() -> dict[str, tuple[str, ...]]:
    """Table logical name -> every DynamoDB action some grant type's stores call."""
    access: dict[str, tuple[str, ...]] = {}
    for grant_type in GRANT_TYPES:
        for table, actions in grant_type.table_access.items():
            access[table] = tuple(sorted({*access.get(table, ()), *actions}))
    return access
