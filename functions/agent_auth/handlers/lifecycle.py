"""POST /introspect (RFC 7662) and POST /revoke (RFC 7009): glue only, each behind the client-endpoint
shell (web/client_endpoint.py), which authenticates the agent and writes the one audit record."""

from __future__ import annotations

from typing import Any

from agent_auth import wiring
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.function import Container
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ALL_METHODS, NO_STORE, Resolver

app = Resolver()
endpoints: Container[wiring.LifecycleEndpoints] = Container(
    wiring.from_environment(wiring.lifecycle_endpoints)
)


def _serve(endpoint: ClientEndpoint, request: Request) -> Response:
    outcome = endpoint.handle(request)
    return Response.json(outcome.status, outcome.response, headers=NO_STORE)


# Every method reaches the endpoint, so a wrong one is refused with 405 *and* audited.
@app.route("/introspect", ALL_METHODS)
def introspect(request: Request) -> Response:
    return _serve(endpoints.get().introspection, request)


@app.route("/revoke", ALL_METHODS)
def revoke(request: Request) -> Response:
    return _serve(endpoints.get().revocation, request)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
