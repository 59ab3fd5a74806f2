"""The relying party's HttpClient (oauth/upstream/relying_party.py) on urllib: how agent-auth reaches the
upstream OpenID provider's discovery document, keys and token endpoint.

Strict, because what the provider answers decides who a user is:
- https only; plain http only on a loopback host (the development provider);
- no redirect is followed: a 30x is an error, so keys and tokens come only from the URLs configured or
  discovered (OIDC Discovery §4.3), never from wherever a response points;
- timeouts: 3 s to connect and for each read, and the whole body within 3 s;
- at most 1 MiB, JSON objects only (`application/json` or `+json`), parsed strictly (no duplicate names);
- no proxy from the environment: an ID token is never routed through whatever HTTPS_PROXY names.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode

from agent_auth.oauth.jose import MalformedJose, strict_json_object
from agent_auth.oauth.upstream.relying_party import UpstreamUnavailable, is_allowed_url

MAX_RESPONSE_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 3.0
ERROR_STATUSES = frozenset({400, 401})
"""RFC 6749 §5.2: a token endpoint's error response, whose JSON body the relying party reads."""
_CHUNK = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 30x status


class UrllibHttpClient:
    def __init__(self, timeout: float = TIMEOUT_SECONDS, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl.create_default_context()),
            _NoRedirects(),
        )

    def get_json(self, url: str) -> dict[str, Any]:
        return self._exchange(_request(url), frozenset())

    def post_form(
        self, url: str, fields: Mapping[str, str], basic_auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        request = _request(url, urlencode(dict(fields)).encode("ascii"))
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if basic_auth is not None:
            # RFC 6749 §2.3.1: form-encode the id and the secret before joining them.
            user, password = (quote_plus(part) for part in basic_auth)
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        return self._exchange(request, ERROR_STATUSES)

    def _exchange(self, request: urllib.request.Request, also_ok: frozenset[int]) -> dict[str, Any]:
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", "agent-auth")
        deadline = time.monotonic() + self._timeout
        try:
            response = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as error:
            response = error  # a 30x, 4xx or 5xx: still a response, with a status and a body
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise UpstreamUnavailable(_failure(exc)) from exc
        try:
            with response:
                status = int(response.status or 0)
                if 300 <= status < 400:
                    raise UpstreamUnavailable("redirect")
                if status != 200 and status not in also_ok:
                    raise UpstreamUnavailable(f"http_{status}")
                content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if content_type != "application/json" and not content_type.endswith("+json"):
                    raise UpstreamUnavailable("not_json")
                body = self._read(response, deadline)
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamUnavailable(_failure(exc)) from exc
        try:
            return strict_json_object(body)
        except MalformedJose as exc:
            raise UpstreamUnavailable("not_json") from exc

    def _read(self, response: Any, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise UpstreamUnavailable("too_large")
        body = bytearray()
        while True:
            chunk = response.read(min(_CHUNK, self._max_bytes + 1 - len(body)))
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self._max_bytes:
                raise UpstreamUnavailable("too_large")
            if time.monotonic() > deadline:
                raise UpstreamUnavailable("timeout")


def _request(url: str, data: bytes | None = None) -> urllib.request.Request:
    if not is_allowed_url(url):
        raise UpstreamUnavailable("refused_url")
    return urllib.request.Request(url, data=data)  # noqa: S310 (https, or http on loopback: checked above)


def _failure(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return "timeout" if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError) else "network"
