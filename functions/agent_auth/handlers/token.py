"""POST /token."""

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
    """Built on first use, once per execution environment."""
    settings = Settings.from_env()
    return wiring.token_endpoint(settings, AwsClients(settings.region))


@app.route("/token", ALL_METHODS)
def token(request: Request) -> Response:
    # Every method reaches the endpoint, so a wrong one is refused with 405 *and* audited.
    outcome = endpoint().handle(request)
    return Response.json(outcome.status, outcome.response, headers=NO_STORE)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
