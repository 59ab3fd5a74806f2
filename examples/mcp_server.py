"""A tiny MCP server (the official `mcp` SDK, streamable HTTP) protected by agent-auth access tokens.

It publishes RFC 9728 protected-resource metadata naming agent-auth as its authorization server, so an
MCP client (the SDK's `OAuthClientProvider`, for one) discovers where to sign the user in, and it
verifies each bearer token offline with the SDK's `Verifier` (agent_auth_sdk, RFC 9068): the issuer's
keys are fetched once, each key's algorithm is pinned, the header's `typ` must be `at+jwt`, `iss` must be
the issuer and `aud` this server.

Try it with `agent-auth dev`: add an audience for this server to the policy, give a user a role with
its scope and list the scope in a public agent's `delegation.scopes`:

    audiences:
      notes:
        uri: http://127.0.0.1:8931/mcp     # plain http is allowed on loopback only
        scopes: {notes.read: Read notes}

then run `python examples/mcp_server.py --issuer http://127.0.0.1:<dev port> --port 8931`. Agents that
call it with their own tokens (client credentials, as examples/agent.py does) need a role with the scope.
"""

from __future__ import annotations

import argparse

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from agent_auth_sdk import Verifier
from agent_auth_sdk.mcp_verifier import McpTokenVerifier

SCOPE = "notes.read"


def build(issuer: str, resource: str) -> MCPServer:
    """The server for `resource` (its own URL, ending in /mcp), trusting tokens from `issuer`."""
    server = MCPServer(
        "notes",
        token_verifier=McpTokenVerifier(Verifier(issuer, resource)),
        # Validated from plain strings so a path-less issuer keeps no trailing slash (RFC 8414 §3.3).
        auth=AuthSettings.model_validate(
            {
                "issuer_url": issuer,
                "resource_server_url": resource,
                "required_scopes": [SCOPE],
                "validate_token_resource": True,
            }
        ),
    )

    @server.tool()
    def whoami() -> str:
        """Who the caller acts for, as the access token says."""
        token = get_access_token()
        assert token is not None  # the bearer middleware let the request in
        return f"{token.subject} via {token.client_id}"

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True, help="agent-auth's issuer, e.g. http://127.0.0.1:8787")
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    resource = f"http://127.0.0.1:{args.port}/mcp"
    build(args.issuer, resource).run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
