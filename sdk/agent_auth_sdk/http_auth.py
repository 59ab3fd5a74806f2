"""`auth=` for httpx and httpx2 clients (sync and async): the agent's token on every request.

One class serves both libraries: it subclasses whichever of `httpx.Auth` and `httpx2.Auth` is installed
(neither is required to import the SDK). A 401 with `error="invalid_token"` from the resource server
(RFC 6750 §3.1; revoked, or signed by a key it has not seen yet) drops the cached token and retries once.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncGenerator, Generator
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent_auth_sdk.agent import AgentAuth


def _installed_bases() -> tuple[type, ...]:
    bases = []
    for name in ("httpx", "httpx2"):
        try:
            bases.append(importlib.import_module(name).Auth)
        except ImportError:
            continue
    return tuple(bases)


def _refused(response: Any) -> bool:
    challenge = response.headers.get("www-authenticate", "")
    return bool(response.status_code == 401 and "invalid_token" in challenge)


class _BearerFlows:
    requires_request_body = False
    requires_response_body = False

    def __init__(self, agent: AgentAuth, resource: str | None, scope: str | None) -> None:
        self.agent, self.resource, self.scope = agent, resource, scope

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        token = self.agent.token(self.scope, self.resource)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if _refused(response):
            self.agent.forget(self.scope, self.resource, token)
            token = self.agent.token(self.scope, self.resource)
            request.headers["Authorization"] = f"Bearer {token.access_token}"
            yield request

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        token = await self.agent.atoken(self.scope, self.resource)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if _refused(response):
            self.agent.forget(self.scope, self.resource, token)
            token = await self.agent.atoken(self.scope, self.resource)
            request.headers["Authorization"] = f"Bearer {token.access_token}"
            yield request

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        return self.sync_auth_flow(request)  # pragma: no cover (the clients call the two above)


BearerAuth = _BearerFlows
"""The type `AgentAuth.auth` returns (at run time, a subclass that is also each installed `Auth`)."""


@cache
def _bearer_class() -> type[_BearerFlows]:
    bases = _installed_bases()
    if not bases:
        raise ImportError("agent.auth() needs httpx or httpx2 installed")
    return type("BearerAuth", (_BearerFlows, *bases), {})


def bearer_auth(agent: AgentAuth, resource: str | None, scope: str | None) -> _BearerFlows:
    return _bearer_class()(agent, resource, scope)
