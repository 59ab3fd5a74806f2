"""How the SDK speaks HTTP: the standard library by default, or an httpx / httpx2 client it is given.

The SDK only ever sends small form posts and JSON GETs, so a two-method protocol is all it needs; that
keeps HTTP libraries optional, and lets tests hand in an httpx2 client on a `MockTransport`.
"""

from __future__ import annotations

import inspect
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_auth_sdk.errors import AgentAuthError

TIMEOUT = 10.0


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise AgentAuthError(f"The server answered {self.status} without JSON") from exc


class Transport(Protocol):
    def get(self, url: str) -> Response: ...

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> Response: ...


class UrllibTransport:
    """The default: no dependency. Errors with a body (4xx) are answers, not exceptions."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._timeout = timeout

    def get(self, url: str) -> Response:
        return self._send(_checked(url), None, {"Accept": "application/json"})

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> Response:
        body = urllib.parse.urlencode(form).encode()
        all_headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        return self._send(_checked(url), body, {**all_headers, **headers})

    def _send(self, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (scheme checked)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:  # noqa: S310
                return Response(answer.status, answer.read(), _lower(answer.headers.items()))
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read(), _lower(exc.headers.items()))
        except (urllib.error.URLError, OSError) as exc:
            raise AgentAuthError(f"Could not reach {url}: {exc}") from exc


def _checked(url: str) -> str:
    """Only http(s): never `file:` or another scheme urllib would happily open."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise AgentAuthError("Only http and https URLs are fetched")
    return url


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


class HttpxTransport:
    """Any httpx or httpx2 `Client` (they share this API): connection reuse, proxies, mock transports."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, url: str) -> Response:
        return self._send("GET", url, headers={"Accept": "application/json"})

    def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> Response:
        return self._send("POST", url, data=form, headers={"Accept": "application/json", **headers})

    def _send(self, method: str, url: str, **kwargs: Any) -> Response:
        try:
            answer = self._client.request(method, url, **kwargs)
        except Exception as exc:  # the library's own transport errors, whichever library it is
            raise AgentAuthError(f"Could not reach {url}: {exc}") from exc
        return Response(answer.status_code, answer.content, _lower(answer.headers.items()))


def transport_for(http: Any) -> Transport:
    """`None`: the standard library; an httpx / httpx2 client: wrapped; a `Transport`: as is."""
    if http is None:
        return UrllibTransport()
    if hasattr(http, "request") and hasattr(http, "headers"):
        if inspect.iscoroutinefunction(http.request):
            raise TypeError("http= takes a synchronous client (httpx.Client / httpx2.Client)")
        return HttpxTransport(http)
    return http  # type: ignore[no-any-return]
