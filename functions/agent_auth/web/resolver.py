"""One resolver for every function: routing, method checks and error rendering in one place.

Powertools' REST resolver would do the routing, but importing it costs about 50 ms of a cold start
whose whole budget over boto3 is about 75 ms (performance target 3), for the handful of fixed paths
we serve. Routes here stay free of try/except: every error is a typed exception rendered below.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

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


def error_response(error: AgentAuthError) -> Response:
    """RFC 6749 §5.2 body with the fixed description; never exception text."""
    return Response.json(
        error.status,
        {"error": error.error, "error_description": error.description},
        headers={**NO_STORE, **error.headers()},
    )


class Resolver:
    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []

    def route(self, path: str, methods: tuple[str, ...]) -> Callable[[Route], Route]:
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
        try:
            request = Request.from_event(event)
            return self._dispatch(request)
        except AgentAuthError as error:
            return error_response(error)
        except MalformedEvent:
            return error_response(InvalidRequest("Malformed request", reason="malformed_event"))
        except DependencyFailure as failure:
            logger.warning("dependency failure", extra={"failure": type(failure.__cause__).__name__})
            return error_response(TemporarilyUnavailable("Service temporarily unavailable"))
        except Exception:
            # A bug, not bad input. Log the type and traceback (no event, no body) and answer plainly.
            logger.exception("unhandled error")
            return error_response(AgentAuthError("Internal error"))

    def _dispatch(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            for pattern, path in self._patterns:
                match = pattern.match(request.path)
                if match:
                    methods = self._routes[path]
                    request = replace(
                        request, path_params={k: unquote(v) for k, v in match.groupdict().items()}
                    )
                    break
        if methods is None:
            raise NotFound("Not found")
        route = methods.get(request.method)
        if route is None:
            raise MethodNotAllowed(tuple(sorted(methods)))
        return route(request)
