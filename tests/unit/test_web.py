"""The shared resolver: routing, 404/405, and no exception text or 5xx for bad input."""

from __future__ import annotations

import json

from agent_auth.devserver.events import rest_proxy_event
from agent_auth.errors import DependencyFailure
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import Resolver

app = Resolver()


@app.route("/ok", ("GET",))
def ok(request: Request) -> Response:
    return Response.json(200, {"ip": request.source_ip})


@app.route("/boom", ("GET",))
def boom(request: Request) -> Response:
    raise RuntimeError("secret internals")


@app.route("/aws", ("GET",))
def aws(request: Request) -> Response:
    raise DependencyFailure("ThrottlingException")


def call(method: str, path: str) -> dict[str, object]:
    return app.resolve(rest_proxy_event(method=method, path=path, source_ip="192.0.2.9"))


def test_routes_and_passes_the_source_ip() -> None:
    result = call("GET", "/ok")
    assert result["statusCode"] == 200 and json.loads(str(result["body"])) == {"ip": "192.0.2.9"}


def test_unknown_path_is_404_and_wrong_method_405_with_allow() -> None:
    assert call("GET", "/nope")["statusCode"] == 404
    result = call("POST", "/ok")
    assert result["statusCode"] == 405 and result["headers"]["Allow"] == "GET"  # type: ignore[index]


def test_bug_is_500_without_exception_text() -> None:
    result = call("GET", "/boom")
    assert result["statusCode"] == 500 and "secret internals" not in str(result["body"])


def test_dependency_failure_is_503_temporarily_unavailable() -> None:
    result = call("GET", "/aws")
    assert result["statusCode"] == 503
    assert json.loads(str(result["body"]))["error"] == "temporarily_unavailable"


def test_bad_base64_body_is_400() -> None:
    event = rest_proxy_event(method="GET", path="/ok")
    event.update(body="***", isBase64Encoded=True)
    assert app.resolve(event)["statusCode"] == 400
