"""Discovery metadata (RFC 8414, OpenID Discovery) and the published signing keys."""

from __future__ import annotations

from functools import cache
from typing import Any

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.kms import KmsPublicKeys
from agent_auth.config import Settings
from agent_auth.oauth.metadata import server_metadata
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import Resolver

CACHEABLE = {"Cache-Control": "public, max-age=300"}
app = Resolver()


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def public_keys() -> KmsPublicKeys:
    return wiring.public_keys(settings(), AwsClients(settings().region))


@cache
def metadata() -> dict[str, object]:
    return server_metadata(settings().issuer, wiring.SUPPORTED_GRANT_TYPES)


@app.route("/.well-known/oauth-authorization-server", ("GET", "HEAD"))
@app.route("/.well-known/openid-configuration", ("GET", "HEAD"))
def discovery(request: Request) -> Response:
    return Response.json(200, metadata(), headers=CACHEABLE)


@app.route("/jwks.json", ("GET", "HEAD"))
def jwks(request: Request) -> Response:
    return Response.json(200, public_keys().jwks(), headers=CACHEABLE)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
