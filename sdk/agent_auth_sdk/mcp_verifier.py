"""The `mcp` server SDK's `TokenVerifier` (mcp.server.auth.provider), backed by `Verifier`: the bearer
middleware of an `MCPServer` then accepts only our access tokens for this server."""

from __future__ import annotations

import asyncio

from mcp.server.auth.provider import AccessToken

from agent_auth_sdk.errors import AgentAuthError
from agent_auth_sdk.verifier import Verifier


class McpTokenVerifier:
    def __init__(self, verifier: Verifier, *, introspect: bool = False) -> None:
        self.verifier = verifier
        self.introspect = introspect

    async def verify_token(self, token: str) -> AccessToken | None:
        """None for anything refused: the SDK answers 401 `invalid_token`; it checks the scopes itself
        (`AuthSettings.required_scopes`) and the resource (`validate_token_resource`)."""
        try:
            if self.verifier.ready and not self.introspect:
                verified = self.verifier.verify(token)
            else:
                verified = await asyncio.to_thread(self.verifier.verify, token, introspect=self.introspect)
        except AgentAuthError:
            return None
        return AccessToken(
            token=token,
            client_id=verified.agent,
            scopes=sorted(verified.scopes),
            expires_at=verified.expires_at,
            resource=verified.audience,
            subject=verified.user,
            claims=verified.claims,
        )
