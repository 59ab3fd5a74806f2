"""The official `mcp` Python SDK against `agent-auth dev`: its `OAuthClientProvider`, given the
pre-registered public agent, discovers the MCP server's protected-resource metadata (RFC 9728) and our
metadata (RFC 8414), sends the user through sign-in and consent with PKCE (RFC 7636) and a `resource`
(RFC 8707), checks `iss` on the way back (RFC 9207), and calls a tool on examples/mcp_server.py with
the token it got. A real Chromium signs in and consents, as a user would.

Needs Debian's chromium; without it the browser test skips with the reason, unless
AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.e2e.conftest import DevServer, serving, start_dev_server, stop_dev_server
from tests.e2e.sign_in import Callback, sign_in_and_allow
from tests.e2e.test_approval_browser import chromium
from tests.e2e.test_mcp_conformance import free_port
from tests.support import ROOT, policy_document, rsa_key

PUBLIC_AGENT = "public-app"
USER = "alice@example.com"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcp_server_example", ROOT / "examples" / "mcp_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLE = load_example()


def policy_with_mcp_server(resource: str) -> dict[str, Any]:
    """The test policy, plus the MCP server as an audience the user may delegate to public-app."""
    document = policy_document({"rsa": rsa_key()})
    document["audiences"]["notes"] = {"uri": resource, "scopes": {EXAMPLE.SCOPE: "Read notes"}}
    document["roles"]["notes-reader"] = [EXAMPLE.SCOPE]
    document["users"][USER] = [*document["users"][USER], "notes-reader"]
    document["agents"][PUBLIC_AGENT]["delegation"]["scopes"].append(EXAMPLE.SCOPE)
    return document


@dataclass
class Stack:
    dev: DevServer
    resource: str
    sent: list[httpx2.Request] = field(default_factory=list)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    dev = start_dev_server(
        tmp_path_factory.mktemp("mcp-sdk"), rsa_key(), document=policy_with_mcp_server(resource)
    )
    try:
        app = EXAMPLE.build(dev.issuer, resource).streamable_http_app(host="127.0.0.1")
        with serving(app, port):
            yield Stack(dev, resource)
    finally:
        stop_dev_server(dev.process)


class Memory:
    """The SDK's `TokenStorage`, holding the pre-registered client: no dynamic registration."""

    def __init__(self, client: OAuthClientInformationFull) -> None:
        self.client: OAuthClientInformationFull = client
        self.tokens: OAuthToken | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def call_whoami(
    stack: Stack,
    redirect_uri: str,
    redirect_handler: Callable[[str], Awaitable[None]],
    callback_handler: Callable[[], Awaitable[AuthorizationCodeResult]],
) -> str:
    metadata = OAuthClientMetadata(
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        client_name="MCP SDK test client",
    )
    registered = OAuthClientInformationFull(
        client_id=PUBLIC_AGENT,
        token_endpoint_auth_method="none",
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
    )
    provider = OAuthClientProvider(
        server_url=stack.resource,
        client_metadata=metadata,
        storage=Memory(registered),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def record(request: httpx2.Request) -> None:
        stack.sent.append(request)

    async with (
        httpx2.AsyncClient(auth=provider, event_hooks={"request": [record]}, timeout=30) as http,
        Client(streamable_http_client(stack.resource, http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    [content] = result.content
    return str(content.text)  # type: ignore[union-attr]


def form(request: httpx2.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@pytest.mark.browser
def test_the_mcp_sdk_client_signs_the_user_in_and_calls_a_tool_with_the_token(stack: Stack) -> None:
    chromium()  # skip or fail early, before any flow starts
    callback = Callback()
    authorize_urls: list[str] = []

    async def redirect_handler(url: str) -> None:
        authorize_urls.append(url)
        await anyio.to_thread.run_sync(partial(sign_in_and_allow, url, user=USER, expect=("Read notes",)))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult.model_validate(callback.answer())

    try:
        answer = anyio.run(call_whoami, stack, callback.uri, redirect_handler, callback_handler)
    finally:
        callback.server.shutdown()

    # The tool saw the user the token was issued for, and the agent acting for them.
    assert answer == f"{USER} via {PUBLIC_AGENT}"
    # Discovery: the MCP server's RFC 9728 metadata, then ours (RFC 8414).
    paths = [r.url.path for r in stack.sent if r.method == "GET"]
    assert "/.well-known/oauth-protected-resource/mcp" in paths
    assert "/.well-known/oauth-authorization-server" in paths
    # PKCE with S256 and the resource indicator at /authorize ...
    [url] = authorize_urls
    asked = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert asked["client_id"] == PUBLIC_AGENT and asked["code_challenge_method"] == "S256"
    assert asked["resource"] == stack.resource and EXAMPLE.SCOPE in asked["scope"].split()
    # ... and at the token endpoint, with the verifier that matches the challenge.
    [exchange] = [form(r) for r in stack.sent if r.url.path == "/token"]
    assert exchange["grant_type"] == "authorization_code" and exchange["resource"] == stack.resource
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == asked["code_challenge"]
    # RFC 9207: the response carried our issuer, which the SDK compared with our metadata's.
    assert callback.answer()["iss"] == stack.dev.issuer
    # The tool call carried the token, issued for the MCP server and no other.
    bearers = {r.headers.get("authorization") for r in stack.sent if r.url.path == "/mcp"}
    [bearer] = bearers - {None}
    claims = _claims(bearer.removeprefix("Bearer "))
    assert claims["aud"] == stack.resource and claims["sub"] == USER
    audit = stack.dev.cli("audit", "--dev", "--user", USER, "--json")
    assert audit.returncode == 0 and '"authorize.consent"' in audit.stdout and stack.resource in audit.stdout


@pytest.mark.parametrize(("iss", "why"), [("http://127.0.0.1:1", "iss mismatch"), (None, "missing iss")])
def test_the_mcp_sdk_refuses_an_authorization_response_without_our_issuer(
    stack: Stack, iss: str | None, why: str
) -> None:
    # Given an authorization response as a mix-up attacker would forge it (RFC 9207 §2.4): the right
    # state, but another issuer or none, although our metadata promises iss on every response
    states: list[str] = []

    async def redirect_handler(url: str) -> None:
        states.append(parse_qs(urlsplit(url).query)["state"][0])

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code="never-exchanged", state=states[-1], iss=iss)

    # When the SDK's client receives it, Then it stops before the code reaches the token endpoint
    before = len(stack.sent)
    with pytest.raises(ExceptionGroup) as caught:  # the SDK's transport task group wraps it
        anyio.run(call_whoami, stack, "http://127.0.0.1:8765/callback", redirect_handler, callback_handler)
    assert caught.group_contains(OAuthFlowError, match=why)
    assert not [r for r in stack.sent[before:] if r.url.path == "/token"]


def test_the_mcp_server_refuses_a_token_our_issuer_signed_for_another_audience(stack: Stack) -> None:
    # Given a valid access token from the same issuer, but for the CRM (support-bot's standing access)
    issued = httpx2.post(
        f"{stack.dev.issuer}/token",
        auth=("support-bot", stack.dev.credentials["support-bot"]["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "crm.contacts.read"},
    )
    assert issued.status_code == 200, issued.text
    assert _claims(issued.json()["access_token"])["aud"] == "https://crm.example.com"
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    # When it is presented to the MCP server, Then it is refused as if there were none (RFC 6750 §3.1)
    for bearer in (issued.json()["access_token"], None):
        sent = headers | ({"Authorization": f"Bearer {bearer}"} if bearer else {})
        refused = httpx2.post(stack.resource, json=ping, headers=sent)
        assert refused.status_code == 401
        assert "/.well-known/oauth-protected-resource/mcp" in refused.headers["www-authenticate"]


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]
