"""Lambda functions from parts: a container per function, and one factory for client endpoints.

A container builds its function's use case on first use, once per execution environment (AWS clients
are made once, lazily); `reset_all()` lets tests start each case from fresh settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ALL_METHODS, NO_STORE, Resolver

T = TypeVar("T")


class Container(Generic[T]):
    _every: ClassVar[list[Container[Any]]] = []

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        Container._every.append(self)

    def get(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def reset(self) -> None:
        self._value = None

    @classmethod
    def reset_all(cls) -> None:
        for container in cls._every:
            container.reset()


class ClientFunction:
    """A Lambda function serving one client endpoint (/token, /access-requests, ...)."""

    def __init__(self, path: str, build: Callable[[], ClientEndpoint]) -> None:
        self.container = Container(build)
        self.app = Resolver()
        # Every method reaches the endpoint, so a wrong one is refused with 405 *and* audited.
        self.app.route(path, ALL_METHODS)(self._serve)

    def _serve(self, request: Request) -> Response:
        outcome = self.container.get().handle(request)
        return Response.json(outcome.status, outcome.response, headers=NO_STORE)

    def lambda_handler(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        return self.app.resolve(event, context)
