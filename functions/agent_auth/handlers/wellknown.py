"""Discovery metadata (RFC 8414, OpenID Discovery) and the published signing keys (RFC 7517): with key
rotation, the key set of signing_keys.py, read at most once a minute, so a new key is published before it
signs and an old one until its last token expired."""

from __future__ import annotations

from typing import Any

from agent_auth import wiring
from agent_auth.adapters.kms import KmsPublicKeys
from agent_auth.config import Settings
from agent_auth.grant_catalog import grant_type_names
from agent_auth.oauth.metadata import openid_configuration, server_metadata
from agent_auth.signing_keys import JWKS_MAX_AGE
from agent_auth.web.function import Container
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import Resolver

CACHEABLE = {"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"}
"""Below half the key rotation overlap (signing_keys.MIN_OVERLAP): a cached JWKS never misses a key
that signs."""
app = Resolver()


_keys: Container[KmsPublicKeys] = Container(wiring.from_environment(wiring.public_keys))
public_keys = _keys.get
_settings = Container(Settings.from_env)
_metadata = Container(lambda: server_metadata(_settings.get().issuer, grant_type_names()))
metadata = _metadata.get
_openid = Container(
    lambda: openid_configuration(_settings.get().issuer, grant_type_names(), _settings.get().signing_alg)
)


@app.route("/.well-known/oauth-authorization-server", ("GET", "HEAD"))
def discovery(request: Request) -> Response:
    return Response.json(200, metadata(), headers=CACHEABLE)


@app.route("/.well-known/openid-configuration", ("GET", "HEAD"))
def openid_discovery(request: Request) -> Response:
    return Response.json(200, _openid.get(), headers=CACHEABLE)


@app.route("/jwks.json", ("GET", "HEAD"))
def jwks(request: Request) -> Response:
    return Response.json(200, public_keys().jwks(), headers=CACHEABLE)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
