"""The SDK end to end against `agent-auth dev`: one token request for many calls (counted by the
client and by the server's audit trail), private_key_jwt, the wait for a human's approval, the verifier
on the server's real keys, and MCP clients (the SDK's `auth=`, the `mcp` SDK's client-credentials and
private_key_jwt providers, and examples/agent.py) calling examples/mcp_server.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import anyio
import httpx2
import pytest
from cryptography.hazmat.primitives import serialization
from mcp import Client
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from agent_auth_sdk import AgentAuth, InvalidToken, Token, Verifier
from tests.e2e.conftest import DevServer, serving, start_dev_server, stop_dev_server
from tests.e2e.test_jit_flow import link_in, mail_for
from tests.support import ROOT, policy_document, rsa_key

CRM = "https://crm.example.com"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcp_server_example", ROOT / "examples" / "mcp_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = load_example()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    dev: DevServer
    resource: str

    def secret(self, agent: str) -> str:
        return self.dev.credentials[agent]["client_secret"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    key = rsa_key("signing-key")
    document = policy_document({"rsa": key})
    document["audiences"]["notes"] = {"uri": resource, "scopes": {EXAMPLE.SCOPE: "Read notes"}}
    document["roles"]["notes-reader"] = [EXAMPLE.SCOPE]
    for agent in ("support-bot", "signing-agent"):
        document["agents"][agent]["roles"].append("notes-reader")
    dev = start_dev_server(tmp_path_factory.mktemp("sdk"), key, document=document)
    try:
        app = EXAMPLE.build(dev.issuer, resource).streamable_http_app(host="127.0.0.1")
        with serving(app, port):
            yield Stack(dev, resource)
    finally:
        stop_dev_server(dev.process)


def counting_client() -> tuple[httpx2.Client, list[str]]:
    sent: list[str] = []
    client = httpx2.Client(event_hooks={"request": [lambda r: sent.append(f"{r.method} {r.url.path}")]})
    return client, sent


def audit(stack: Stack, agent: str) -> list[dict[str, Any]]:
    result = stack.dev.cli("audit", "--dev", "--agent", agent, "--json", "--since", "1h", "--limit", "5000")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def approve(stack: Stack, request_id: str) -> None:
    """As the approver does: the emailed link, its page, and a plain form post of Approve."""
    link = link_in(mail_for(stack.dev, request_id))
    with httpx2.Client() as browser:
        page = browser.get(link)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        decided = browser.post(link, data={**fields, "decision": "approve"})
        assert decided.status_code == 200 and "<h1>Approved</h1>" in decided.text


def test_many_calls_cost_one_token_request(stack: Stack) -> None:
    # Given an agent (client_secret_post) and 40 threads that each want its token 5 times
    http, sent = counting_client()
    agent = AgentAuth(
        stack.dev.issuer,
        "billing-agent",
        client_secret=stack.secret("billing-agent"),
        auth_method="client_secret_post",
        http=http,
    )
    tokens: list[Token] = []

    def work() -> None:
        for _ in range(5):
            tokens.append(agent.token("billing.invoices.read", "https://billing.example.com"))

    threads = [threading.Thread(target=work) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then 200 calls, one token, one token request: as the client counted, and as the server audited
    assert len(tokens) == 200 and len({t.access_token for t in tokens}) == 1
    assert sent.count("POST /token") == 1
    issued = [
        r for r in audit(stack, "billing-agent") if r["action"] == "token.issue" and r["decision"] == "allow"
    ]
    assert len(issued) == 1


def test_a_private_key_jwt_agent_and_the_verifier_on_the_servers_keys(stack: Stack) -> None:
    # Given the private_key_jwt agent and a verifier for the MCP server's audience
    agent = AgentAuth(stack.dev.issuer, "signing-agent", private_key=stack.dev.key.private, kid="signing-key")
    http, sent = counting_client()
    verifier = Verifier(stack.dev.issuer, stack.resource, scopes=[EXAMPLE.SCOPE], http=http)
    # When it gets a token for that audience, and the API verifies it many times
    token = agent.token(EXAMPLE.SCOPE, stack.resource)
    for _ in range(200):
        verified = verifier.verify(token.access_token)
    # Then the claims are the agent's, and the keys were fetched once (discovery + JWKS), then never
    assert verified.agent == verified.user == "signing-agent" and verified.scopes == {EXAMPLE.SCOPE}
    assert sent == ["GET /.well-known/oauth-authorization-server", "GET /jwks.json"]
    # And a verifier for another API refuses it
    with pytest.raises(InvalidToken, match="another audience"):
        Verifier(stack.dev.issuer, CRM).verify(token.access_token)


def test_the_agent_waits_for_a_humans_approval(stack: Stack) -> None:
    # Given the support bot asks for write access and waits in a thread
    agent = AgentAuth(stack.dev.issuer, "support-bot", client_secret=stack.secret("support-bot"))
    request = agent.request_access("crm.contacts.write", "Merge duplicates (ticket 4821)", duration=600)
    assert request.status == "pending" and request.interval == 5
    outcome: list[Token | BaseException] = []

    def wait() -> None:
        try:
            outcome.append(request.wait(timeout=60, progress=False))
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    # When the approver approves from the emailed link
    approve(stack, request.request_id)
    waiter.join(timeout=60)
    # Then the wait ends with the elevated token, which the API accepts for that scope
    [token] = outcome
    assert isinstance(token, Token), token
    assert token.scope == "crm.contacts.write" and request.status == "approved"
    verified = Verifier(stack.dev.issuer, CRM).verify(token.access_token, ["crm.contacts.write"])
    assert verified.claims["access_request"] == request.request_id


async def whoami(http: httpx2.AsyncClient, resource: str) -> str:
    async with http, Client(streamable_http_client(resource, http_client=http)) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    return " ".join(getattr(part, "text", "") for part in result.content)


def test_the_sdks_auth_calls_the_example_mcp_server(stack: Stack) -> None:
    agent = AgentAuth(stack.dev.issuer, "support-bot", client_secret=stack.secret("support-bot"))
    http = httpx2.AsyncClient(auth=agent.auth(resource=stack.resource, scope=EXAMPLE.SCOPE), timeout=30)
    assert anyio.run(whoami, http, stack.resource) == "support-bot via support-bot"


def test_the_mcp_server_refuses_a_token_for_another_audience(stack: Stack) -> None:
    agent = AgentAuth(stack.dev.issuer, "support-bot", client_secret=stack.secret("support-bot"))
    token = agent.token("crm.contacts.read", CRM)
    answer = httpx2.post(stack.resource, headers={"Authorization": f"Bearer {token.access_token}"}, json={})
    assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["www-authenticate"]


class Memory:
    """The `mcp` SDK's TokenStorage."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def test_the_mcp_sdks_client_credentials_provider(stack: Stack) -> None:
    provider = ClientCredentialsOAuthProvider(
        server_url=stack.resource,
        storage=Memory(),
        client_id="support-bot",
        client_secret=stack.secret("support-bot"),
        scope=EXAMPLE.SCOPE,
        issuer=stack.dev.issuer,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    assert anyio.run(whoami, http, stack.resource) == "support-bot via support-bot"


def test_the_mcp_sdks_private_key_jwt_provider(stack: Stack) -> None:
    pem = stack.dev.key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assertions = SignedJWTParameters(
        issuer="signing-agent", subject="signing-agent", signing_key=pem, lifetime_seconds=60
    )
    provider = PrivateKeyJWTOAuthProvider(
        server_url=stack.resource,
        storage=Memory(),
        client_id="signing-agent",
        assertion_provider=assertions.create_assertion_provider(),
        scope=EXAMPLE.SCOPE,
        issuer=stack.dev.issuer,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    assert anyio.run(whoami, http, stack.resource) == "signing-agent via signing-agent"


def test_the_example_agent_script(stack: Stack) -> None:
    # Given examples/agent.py run as a user runs it, next to the development server's state
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "sdk"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "agent.py"),
            "--credentials",
            str(stack.dev.workdir / "credentials.json"),
            "--mcp",
            stack.resource,
        ],
        cwd=stack.dev.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        match = re.search(r"requested: (req_\S+) \(pending\)", lines[1])
        assert lines[0].startswith("token: scope=crm.contacts.read") and match, lines
        # When the approver approves
        approve(stack, match.group(1))
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)
    # Then it got the elevated token and called the MCP server's tool with its token
    assert process.returncode == 0, rest
    assert "approved: crm.contacts.write" in rest and "whoami: support-bot via support-bot" in rest
