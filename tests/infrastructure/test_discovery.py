"""Every discovery URL an MCP client tries, fetched against the API as deployed.

The official MCP SDK builds the candidate URLs for an issuer (RFC 8414 §3.1 path insertion, then OpenID
Connect Discovery by insertion and by appending, then the root) and moves on after any 4xx. Each URL is
routed the way API Gateway routes it, using the resources of the synthesized template: on the execute-api
host a path must start with the stage (else API Gateway itself answers 403); on a custom domain the API
is mapped at the root. A URL that reaches a resource is fetched through the wellknown function's
lambda_handler, and the first answer the client accepts must name the issuer it expects (RFC 8414 §3.3).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from mcp.client.auth.utils import build_oauth_authorization_server_metadata_discovery_urls

from agent_auth import routes
from agent_auth.handlers import wellknown
from tests.conftest import ISSUER, Deployment
from tests.support import load_event

from .conftest import FULL_CONTEXT
from .synthesis import Synthesized
from .test_api import resource_paths

MCP_SERVER = "https://mcp.example.com/mcp"
API_GATEWAY_MISSING_ROUTE = 403
"""API Gateway's answer for a path with no resource ("Missing Authentication Token")."""


@dataclass(frozen=True)
class Shape:
    synth: Synthesized
    issuer: str
    base_path: str
    """What API Gateway strips before matching resources: "/STAGE" on execute-api, "" on a custom domain."""


def wellknown_paths(synth: Synthesized) -> set[str]:
    function = synth.function_id(routes.WELL_KNOWN)
    paths = resource_paths(synth)
    return {
        paths[m["Properties"]["ResourceId"]["Ref"]]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if {"Fn::GetAtt": [function, "Arn"]} in m["Properties"]["Integration"]["Uri"]["Fn::Join"][1]
    }


def fetch(shape: Shape, url: str) -> tuple[int, dict[str, Any]]:
    path = urlsplit(url).path
    if not path.startswith(shape.base_path + "/"):
        return API_GATEWAY_MISSING_ROUTE, {}
    resource = path.removeprefix(shape.base_path)
    if resource not in wellknown_paths(shape.synth):
        assert resource not in set(resource_paths(shape.synth).values()), resource
        return API_GATEWAY_MISSING_ROUTE, {}
    event = copy.deepcopy(load_event("discovery_oauth_authorization_server.json"))
    event["path"] = event["resource"] = resource
    result = wellknown.lambda_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def walk(shape: Shape) -> list[tuple[str, int]]:
    """What the client fetches, in order, until it accepts metadata; asserts the metadata's issuer."""
    fetched = []
    for url in build_oauth_authorization_server_metadata_discovery_urls(shape.issuer, MCP_SERVER):
        status, body = fetch(shape, url)
        fetched.append((url, status))
        assert status < 500, url
        if status == 200:
            assert body["issuer"] == shape.issuer, url
            assert body["token_endpoint"] == f"{shape.issuer}/token"
            return fetched
    raise AssertionError(f"no discovery URL served metadata: {fetched}")


def test_an_issuer_on_the_stage_path_is_discovered_by_appending(
    synth: Synthesized, deployment: Deployment
) -> None:
    # Given the default deployment: the issuer is https://HOST/v1 (tests.conftest.ISSUER has that shape)
    stage = urlsplit(ISSUER).path
    issuer = synth.environment(synth.function_id(routes.WELL_KNOWN))["ISSUER"]
    assert issuer["Fn::Join"][1][-1] == stage

    # When an MCP client walks its discovery URLs
    fetched = walk(Shape(synth, ISSUER, stage))

    # Then the two path-inserted URLs never reach the API (API Gateway answers 403, the client moves on),
    # and OpenID Connect Discovery by appending serves metadata naming the issuer
    host = ISSUER.removesuffix(stage)
    assert fetched == [
        (f"{host}/.well-known/oauth-authorization-server{stage}", 403),
        (f"{host}/.well-known/openid-configuration{stage}", 403),
        (f"{ISSUER}/.well-known/openid-configuration", 200),
    ]


def test_a_custom_domain_is_discovered_at_the_first_url(
    full: Synthesized, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment with a custom domain: the functions are told the domain as the issuer
    issuer = f"https://{FULL_CONTEXT['domainName']}"
    assert full.environment(full.function_id(routes.WELL_KNOWN))["ISSUER"] == issuer
    monkeypatch.setenv("ISSUER", issuer)
    from tests.conftest import _clear_handler_caches

    _clear_handler_caches()

    # When an MCP client walks its discovery URLs / Then the first one, RFC 8414's, is served
    assert walk(Shape(full, issuer, "")) == [(f"{issuer}/.well-known/oauth-authorization-server", 200)]
