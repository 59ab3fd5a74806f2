"""agent-auth for agents and for the APIs they call, without the server's dependencies.

agent = AgentAuth(issuer, "support-bot", client_secret=secret)
httpx2.Client(auth=agent.auth(resource="https://crm.example.com"))

verifier = Verifier(issuer, audience="https://crm.example.com")
verifier.verify(token, scopes=["crm.contacts.read"]).user
"""

from agent_auth_sdk.access import AccessRequest
from agent_auth_sdk.agent import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, AgentAuth
from agent_auth_sdk.errors import (
    AccessDenied,
    AgentAuthError,
    InsufficientScope,
    InvalidToken,
    OAuthError,
    RequestExpired,
    TokenRejected,
)
from agent_auth_sdk.resource_metadata import protected_resource_metadata, resource_metadata_url
from agent_auth_sdk.tokens import Token
from agent_auth_sdk.verifier import VerifiedToken, Verifier

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "AccessDenied",
    "AccessRequest",
    "AgentAuth",
    "AgentAuthError",
    "InsufficientScope",
    "InvalidToken",
    "OAuthError",
    "RequestExpired",
    "Token",
    "TokenRejected",
    "VerifiedToken",
    "Verifier",
    "protected_resource_metadata",
    "resource_metadata_url",
]
