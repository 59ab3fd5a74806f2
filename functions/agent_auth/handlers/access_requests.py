"""POST /access-requests: an agent asks for just-in-time elevated access."""

from __future__ import annotations

from functools import cache
from typing import Any

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.config import Settings
from agent_auth.oauth.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ALL_METHODS, NO_STORE, Resolver

app = Resolver()


@cache
def endpoint() -> ClientEndpoint:
    settings = Settings.from_env()
    return wiring.access_request_endpoint(settings, AwsClients(settings.region))


@app.route("/access-requests", ALL_METHODS)
def access_requests(request: Request) -> Response:
    outcome = endpoint().handle(request)
    return Response.json(outcome.status, outcome.response, headers=NO_STORE)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
