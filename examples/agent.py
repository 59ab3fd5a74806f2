"""An agent on the SDK (agent_auth_sdk), against `agent-auth dev`: it gets a token, asks for elevated
access and waits for a human to approve it, then calls the example MCP server with a token for it.

    make dev                                  # terminal 1: the server, on examples/policy.yaml
    python examples/agent.py                  # terminal 2: reads .agent-auth/dev.json and credentials.json

While it waits, open the approval link from the development mailbox (`GET /_dev/mailbox` on the
issuer, as lead@example.com) and click Approve. To call the MCP server too, run
`python examples/mcp_server.py --issuer <issuer> --port 8931`, give the policy an audience for it and
the agent a role with its scope:

    audiences:
      notes: {uri: http://127.0.0.1:8931/mcp, scopes: {notes.read: Read notes}}
    roles:
      notes-reader: [notes.read]            # and add notes-reader to support-bot's roles

then pass `--mcp http://127.0.0.1:8931/mcp`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_auth_sdk import AgentAuth, OAuthError

STATE = Path(".agent-auth")


async def whoami(agent: AgentAuth, mcp_url: str) -> str:
    """The MCP server's `whoami` tool, called with a token for that server (RFC 8707 `resource`)."""
    async with (
        httpx2.AsyncClient(auth=agent.auth(resource=mcp_url, scope="notes.read"), timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
    return " ".join(getattr(part, "text", "") for part in result.content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", help="default: the one in .agent-auth/dev.json")
    parser.add_argument("--client-id", default="support-bot")
    parser.add_argument("--credentials", type=Path, default=STATE / "credentials.json")
    parser.add_argument("--scope", default="crm.contacts.read", help="what the agent holds standing")
    parser.add_argument("--elevate", default="crm.contacts.write", help="what it asks a human for")
    parser.add_argument("--mcp", help="the example MCP server's URL, e.g. http://127.0.0.1:8931/mcp")
    args = parser.parse_args()
    issuer = args.issuer or json.loads((STATE / "dev.json").read_text())["issuer"]
    secret = json.loads(args.credentials.read_text())[args.client_id]["client_secret"]

    agent = AgentAuth(issuer, args.client_id, client_secret=secret)
    try:
        token = agent.token(args.scope)
        print(f"token: scope={token.scope}, expires in {int(token.expires_at - time.time())}s", flush=True)

        request = agent.request_access(args.elevate, reason="Merge duplicate contacts", duration=600)
        print(f"requested: {request.request_id} ({request.status}); waiting for an approver", flush=True)
        elevated = request.wait()
        print(f"approved: {elevated.scope}", flush=True)

        if args.mcp:
            print(f"whoami: {asyncio.run(whoami(agent, args.mcp))}", flush=True)
    except OAuthError as refused:
        print(f"refused: {refused.error}: {refused.error_description}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
