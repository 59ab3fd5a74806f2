"""An ASGI middleware: requests without a valid token get 401 / 403 with an RFC 6750 challenge that
points at the RFC 9728 metadata, which this middleware also serves. No web framework needed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from agent_auth_sdk.errors import AgentAuthError, TokenRejected
from agent_auth_sdk.resource_metadata import resource_metadata_path
from agent_auth_sdk.verifier import Verifier

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
SCOPE_KEY = "agent_auth.token"
"""Where the `VerifiedToken` is put in the ASGI scope (and in `scope["state"]["token"]`)."""


class BearerMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        scopes: Iterable[str] = (),
        *,
        exempt: Iterable[str] = (),
        introspect: bool = False,
    ) -> None:
        self.app, self.verifier, self.scopes = app, verifier, tuple(scopes)
        self.metadata_path = resource_metadata_path(verifier.audience)
        self.exempt = frozenset(exempt)
        self.introspect = introspect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.metadata_path:
            await _respond(send, 200, self.verifier.resource_metadata())
            return
        if scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            verified = await self._verify(headers.get("authorization"))
        except TokenRejected as refused:
            challenge = refused.www_authenticate(self.verifier.resource_metadata_url)
            body = {"error": refused.error, "error_description": refused.error_description}
            await _respond(send, refused.status, body, [(b"www-authenticate", challenge.encode())])
            return
        except AgentAuthError:
            await _respond(send, 503, {"error": "temporarily_unavailable"})
            return
        scope[SCOPE_KEY] = verified
        scope.setdefault("state", {})["token"] = verified
        await self.app(scope, receive, send)

    async def _verify(self, authorization: str | None) -> Any:
        verify = self.verifier.verify_header
        if self.verifier.ready and not self.introspect:
            return verify(authorization, self.scopes)  # offline: microseconds, no need for a thread
        return await asyncio.to_thread(verify, authorization, self.scopes, introspect=self.introspect)


async def _respond(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    all_headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": payload})
