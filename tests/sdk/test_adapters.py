"""The SDK's adapters: `auth=` for httpx2 clients, the ASGI middleware, the Powertools route middleware
and the `mcp` server SDK's TokenVerifier."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2
import pytest

from agent_auth_sdk import AgentAuth, Verifier
from agent_auth_sdk.asgi import BearerMiddleware
from tests.sdk.fakes import API, ISSUER, FakeServer, token_response
from tests.support import load_event


def agent_with_tokens(*tokens: str) -> tuple[AgentAuth, FakeServer]:
    issued = iter(tokens)
    server = FakeServer(routes={"/token": lambda r: token_response(next(issued))})
    return AgentAuth(ISSUER, "support-bot", client_secret="s", http=server.client()), server


def test_httpx2_auth_sends_the_cached_token_and_renews_it_once_when_refused() -> None:
    # Given an API that refuses the first token as invalid (revoked, say) and accepts the next
    agent, server = agent_with_tokens("first", "second", "third")
    seen: list[str] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer first":
            return httpx2.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return httpx2.Response(200, json={"ok": True})

    with httpx2.Client(transport=httpx2.MockTransport(api), auth=agent.auth(resource=API)) as client:
        # When it is called twice
        assert client.get(f"{API}/contacts").status_code == 200
        assert client.get(f"{API}/contacts").status_code == 200
    # Then the refused token was replaced once, and the new one reused
    assert seen == ["Bearer first", "Bearer second", "Bearer second"]
    assert server.counts["POST /token"] == 2


def test_httpx2_auth_does_not_retry_a_403() -> None:
    agent, server = agent_with_tokens("first", "second")

    def api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(403, headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'})

    with httpx2.Client(transport=httpx2.MockTransport(api), auth=agent.auth(resource=API)) as client:
        assert client.get(API).status_code == 403
    assert server.counts["POST /token"] == 1


def test_httpx2_async_auth() -> None:
    agent, server = agent_with_tokens("first")

    async def api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text=request.headers["authorization"])

    async def call() -> list[str]:
        async with httpx2.AsyncClient(
            transport=httpx2.MockTransport(api), auth=agent.auth(scope="a")
        ) as client:
            answers = await asyncio.gather(*(client.get(API) for _ in range(10)))
        return [a.text for a in answers]

    assert asyncio.run(call()) == ["Bearer first"] * 10
    assert server.counts["POST /token"] == 1


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    token = scope["agent_auth.token"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"{token.user} via {token.agent}".encode()})


def asgi_client(server: FakeServer, scopes: tuple[str, ...] = ()) -> httpx2.AsyncClient:
    app = BearerMiddleware(hello, Verifier(ISSUER, API + "/mcp", http=server.client()), scopes)
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=API)


def test_asgi_middleware() -> None:
    server = FakeServer()
    good = server.access_token(aud=API + "/mcp")

    async def calls() -> list[httpx2.Response]:
        async with asgi_client(server, ("crm.contacts.read",)) as client:
            return [
                await client.get("/mcp", headers={"Authorization": f"Bearer {good}"}),
                await client.get("/mcp"),
                await client.get(
                    "/mcp",
                    headers={"Authorization": f"Bearer {server.access_token(scope='x', aud=API + '/mcp')}"},
                ),
                await client.get("/.well-known/oauth-protected-resource/mcp"),
            ]

    ok, missing, narrow, metadata = asyncio.run(calls())
    assert ok.status_code == 200 and ok.text == "support-bot via support-bot"
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_token"
    assert missing.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert (
        'resource_metadata="https://crm.example.com/.well-known/oauth-protected-resource/mcp"'
        in (missing.headers["www-authenticate"])
    )
    assert narrow.status_code == 403 and narrow.json()["error"] == "insufficient_scope"
    assert metadata.json() == {
        "resource": API + "/mcp",
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
    }


def rest_event(path: str, authorization: str | None) -> dict[str, Any]:
    event = load_event("token_client_secret_post.json")
    event.update(httpMethod="GET", path=path, resource=path, body=None, isBase64Encoded=False)
    event["headers"] = {"Host": "crm.example.com"}
    event["multiValueHeaders"] = {"Host": ["crm.example.com"]}
    if authorization:
        event["headers"]["Authorization"] = authorization
        event["multiValueHeaders"]["Authorization"] = [authorization]
    event["requestContext"] = {
        **event["requestContext"],
        "httpMethod": "GET",
        "path": path,
        "resourcePath": path,
    }
    return event


def test_powertools_route_middleware() -> None:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from agent_auth_sdk.powertools import bearer_middleware

    server = FakeServer()
    verifier = Verifier(ISSUER, API, http=server.client())
    app = APIGatewayRestResolver()

    @app.get("/contacts", middlewares=[bearer_middleware(verifier, ["crm.contacts.read"])])
    def contacts() -> dict[str, str]:
        token = app.context["token"]
        return {"user": token.user, "agent": token.agent}

    ok = app.resolve(rest_event("/contacts", f"Bearer {server.access_token()}"), None)
    assert ok["statusCode"] == 200 and json.loads(ok["body"]) == {
        "user": "support-bot",
        "agent": "support-bot",
    }
    refused = app.resolve(rest_event("/contacts", None), None)
    assert refused["statusCode"] == 401 and json.loads(refused["body"])["error"] == "invalid_token"
    challenge = refused["multiValueHeaders"]["WWW-Authenticate"][0]
    assert 'resource_metadata="https://crm.example.com/.well-known/oauth-protected-resource"' in challenge
    narrow = app.resolve(rest_event("/contacts", f"Bearer {server.access_token(scope='other')}"), None)
    assert narrow["statusCode"] == 403


@pytest.mark.parametrize("valid", [True, False])
def test_mcp_token_verifier(valid: bool) -> None:
    from agent_auth_sdk.mcp_verifier import McpTokenVerifier

    server = FakeServer()
    verifier = McpTokenVerifier(Verifier(ISSUER, API, http=server.client()))
    token = server.access_token(sub="alice@example.com", client_id="mcp-client") if valid else "not-a-token"
    answer = asyncio.run(verifier.verify_token(token))
    if valid:
        assert answer is not None
        assert (answer.subject, answer.client_id, answer.resource) == ("alice@example.com", "mcp-client", API)
        assert answer.scopes == ["crm.contacts.read"]
    else:
        assert answer is None


def test_one_auth_object_serves_httpx_and_httpx2_when_both_are_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an `httpx` next to httpx2 (a stand-in here: only httpx2 is installed in this environment)
    import types

    from agent_auth_sdk import http_auth

    httpx = types.ModuleType("httpx")

    class Auth:
        requires_request_body = False

    httpx.Auth = Auth  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "httpx", httpx)
    http_auth._bearer_class.cache_clear()
    try:
        agent, _ = agent_with_tokens("first")
        auth = agent.auth(resource=API)
        # Then the one object is an Auth of both, so each library uses its flows
        assert isinstance(auth, Auth) and isinstance(auth, httpx2.Auth)
    finally:
        http_auth._bearer_class.cache_clear()
