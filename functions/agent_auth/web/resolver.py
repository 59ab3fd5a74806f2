"""One resolver for every function: routing, method checks and error rendering in one place.

Powertools' REST resolver would do the routing, but importing it costs about 50 ms of a cold start
whose whole budget over boto3 is about 75 ms (performance target 3), for the handful of fixed paths
we serve. Routes here stay free of try/except: every error is a typed exception rendered below, in
the shape its route declared when it was registered (RouteKind):

- JSON: the RFC 6749 §5.2 body, for endpoints programs call.
- PAGE: an HTML error page through the one layout (web/html.py), for pages people open.
- REDIRECT: for /authorize. Once the redirect URI is known to be the client's, an error goes back to it
  as a 302 with `error`, `state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207) — the route raises
  ErrorRedirect. Any other error, before that point, is an error page: never a redirect to a URI nobody
  vouched for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from aws_lambda_powertools import Logger

from agent_auth.errors import (
    AgentAuthError,
    DependencyFailure,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    TemporarilyUnavailable,
)
from agent_auth.routes import path_pattern
from agent_auth.web.request import MalformedEvent, Request, Response

Route = Callable[[Request], Response]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""For endpoints that refuse wrong methods themselves, so the refusal is audited."""

logger = Logger(service="agent-auth")


class RouteKind(Enum):
    JSON = "json"
    PAGE = "page"
    REDIRECT = "redirect"


@dataclass(frozen=True)
class RedirectTarget:
    """Where an authorization error goes: a redirect URI already matched against the client's."""

    redirect_uri: str
    state: str | None
    issuer: str


class ErrorRedirect(Exception):
    """Raised by a REDIRECT route once `target` is validated; rendered as RFC 6749 §4.1.2.1 says."""

    def __init__(self, error: AgentAuthError, target: RedirectTarget) -> None:
        super().__init__(error.description)
        self.error = error
        self.target = target


AUTHORIZATION_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "invalid_target",  # RFC 8707 §2
    }
)
"""The codes an authorization response may carry (RFC 6749 §4.1.2.1, RFC 8707 §2)."""

PAGE_TITLES = {
    400: "This request is not valid",
    403: "This is not allowed",
    404: "Page not found",
    405: "This method is not allowed here",
    409: "This cannot be done now",
    410: "This has expired",
    429: "Too many attempts",
    503: "Please try again shortly",
}


def error_response(error: AgentAuthError) -> Response:
    """RFC 6749 §5.2 body with the fixed description; never exception text."""
    return Response.json(
        error.status,
        {"error": error.error, "error_description": error.description},
        headers={**NO_STORE, **error.headers()},
    )


def error_page(error: AgentAuthError) -> Response:
    """The error as a page people can read: the fixed description, never exception text."""
    # Imported here: the token function's cold start (performance target 3) never renders a page.
    from agent_auth.web.html import PAGE_HEADERS, PageView, render

    view = PageView(PAGE_TITLES.get(error.status, "Something went wrong"), error.description)
    return Response(status=error.status, body=render(view), headers={**PAGE_HEADERS, **error.headers()})


def error_redirect(error: AgentAuthError, target: RedirectTarget) -> Response:
    """RFC 6749 §4.1.2.1: `error` (and `state` when the client sent one) added to the redirect URI's
    query, which is kept (§3.1.2); RFC 9207 §2: `iss` names us, against mix-up attacks."""
    code = error.error if error.error in AUTHORIZATION_ERRORS else "server_error"
    params = [("error", code), *([("state", target.state)] if target.state else []), ("iss", target.issuer)]
    url = urlsplit(target.redirect_uri)
    query = "&".join(q for q in (url.query, urlencode(params)) if q)
    location = urlunsplit((url.scheme, url.netloc, url.path, query, ""))
    return Response(status=302, headers={"Location": location, **NO_STORE, "Referrer-Policy": "no-referrer"})


def render_error(kind: RouteKind, error: AgentAuthError, method: str = "GET") -> Response:
    response = error_response(error) if kind is RouteKind.JSON else error_page(error)
    if method == "HEAD":
        response.body = ""
    return response


class Resolver:
    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        self._kinds: dict[str, RouteKind] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []

    def route(
        self, path: str, methods: tuple[str, ...], kind: RouteKind = RouteKind.JSON
    ) -> Callable[[Route], Route]:
        if self._kinds.setdefault(path, kind) is not kind:
            raise ValueError(f"{path} is already registered as a {self._kinds[path].value} route")

        def register(func: Route) -> Route:
            if path not in self._routes:
                self._patterns.append((path_pattern(path), path))
            for method in methods:
                self._routes.setdefault(path, {})[method] = func
            return func

        return register

    def resolve(self, event: dict[str, Any], context: object = None) -> dict[str, Any]:
        return self.handle(event).to_proxy_result()

    def handle(self, event: dict[str, Any]) -> Response:
        found = self._find(str(event.get("path") or "/"))
        kind = self._kinds[found[0]] if found else RouteKind.JSON
        method = str(event.get("httpMethod") or "GET").upper()
        try:
            request = Request.from_event(event)
            return self._dispatch(request, found)
        except ErrorRedirect as redirect:
            if kind is RouteKind.REDIRECT:
                return error_redirect(redirect.error, redirect.target)
            return render_error(kind, redirect.error, method)
        except AgentAuthError as error:
            return render_error(kind, error, method)
        except MalformedEvent:
            return render_error(kind, InvalidRequest("Malformed request", reason="malformed_event"), method)
        except DependencyFailure as failure:
            logger.warning("dependency failure", extra={"failure": type(failure.__cause__).__name__})
            return render_error(kind, TemporarilyUnavailable("Service temporarily unavailable"), method)
        except Exception:
            # A bug, not bad input. Log the type and traceback (no event, no body) and answer plainly.
            logger.exception("unhandled error")
            return render_error(kind, AgentAuthError("Internal error"), method)

    def _find(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path in self._routes:
            return path, {}
        for pattern, registered in self._patterns:
            match = pattern.match(path)
            if match:
                return registered, {k: unquote(v) for k, v in match.groupdict().items()}
        return None

    def _dispatch(self, request: Request, found: tuple[str, dict[str, str]] | None) -> Response:
        if found is None:
            raise NotFound("Not found")
        path, params = found
        if params:
            request = replace(request, path_params=params)
        methods = self._routes[path]
        route = methods.get(request.method)
        if route is None:
            raise MethodNotAllowed(tuple(sorted(methods)))
        return route(request)
