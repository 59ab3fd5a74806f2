"""A route middleware for Powertools' API Gateway resolvers (`APIGatewayRestResolver` and the others):

    @app.get("/contacts", middlewares=[bearer_middleware(verifier, ["crm.contacts.read"])])
    def contacts() -> dict: token = app.context["token"]; ...

Powertools is imported only when this module is, so the rest of the SDK never needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Response

from agent_auth_sdk.errors import AgentAuthError, TokenRejected
from agent_auth_sdk.verifier import Verifier


def bearer_middleware(
    verifier: Verifier, scopes: Iterable[str] = (), *, introspect: bool = False
) -> Callable[[Any, Callable[[Any], Response[Any]]], Response[Any]]:
    required = tuple(scopes)

    def middleware(app: Any, next_middleware: Callable[[Any], Response[Any]]) -> Response[Any]:
        headers = app.current_event.headers or {}
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        try:
            verified = verifier.verify_header(authorization, required, introspect=introspect)
        except TokenRejected as refused:
            return Response(
                status_code=refused.status,
                content_type="application/json",
                body=json.dumps({"error": refused.error, "error_description": refused.error_description}),
                headers={"WWW-Authenticate": refused.www_authenticate(verifier.resource_metadata_url)},
            )
        except AgentAuthError:
            return Response(503, "application/json", json.dumps({"error": "temporarily_unavailable"}))
        app.append_context(token=verified)
        return next_middleware(app)

    return middleware
