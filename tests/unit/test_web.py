"""The shared resolver (routing, 404/405, errors by route kind, no exception text or 5xx for bad input)
and the one page layout."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from agent_auth.devserver.events import rest_proxy_event
from agent_auth.errors import AccessDenied, DependencyFailure, InvalidRequest, NotFound
from agent_auth.web.html import PAGE_HEADERS, STYLE, Button, PageForm, PageView, Quote, page_headers, render
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ErrorRedirect, RedirectTarget, Resolver, RouteKind

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


# --- errors render by route kind ----------------------------------------------------------------------

pages = Resolver()


@pages.route("/page", ("GET", "HEAD"), kind=RouteKind.PAGE)
def page_refuses(request: Request) -> Response:
    raise AccessDenied("You may not <b>do</b> this", reason="test")


@pages.route("/page/aws", ("GET",), kind=RouteKind.PAGE)
def page_dependency(request: Request) -> Response:
    raise DependencyFailure("ThrottlingException")


@pages.route("/page/redirect", ("GET",), kind=RouteKind.PAGE)
def page_cannot_redirect(request: Request) -> Response:
    raise ErrorRedirect(AccessDenied("No"), RedirectTarget("https://client.example/cb", "s", ISS))


@pages.route("/json/redirect", ("GET",))
def json_cannot_redirect(request: Request) -> Response:
    raise ErrorRedirect(AccessDenied("No"), RedirectTarget("https://client.example/cb", "s", ISS))


ISS = "https://auth.example.com"
TARGET = RedirectTarget("https://client.example/cb?keep=1", "xyz", ISS)


@pages.route("/authorize", ("GET",), kind=RouteKind.REDIRECT)
def authorize(request: Request) -> Response:
    error = request.query_param("error") or "access_denied"
    if error == "before_validation":
        raise InvalidRequest("Unknown redirect URI", reason="redirect_uri")
    if error == "bug":
        raise RuntimeError("secret internals")
    errors = {"access_denied": AccessDenied("Denied"), "not_found": NotFound("x")}
    state = request.query_param("state")
    raise ErrorRedirect(errors[error], RedirectTarget(TARGET.redirect_uri, state, ISS))


def page_call(method: str, path: str, query: str = "") -> dict[str, Any]:
    return pages.resolve(rest_proxy_event(method=method, path=path, query=query))


def test_a_page_route_renders_errors_as_an_escaped_html_page_with_the_page_headers() -> None:
    result = page_call("GET", "/page")
    headers = result["headers"]
    assert result["statusCode"] == 403 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert "&lt;b&gt;do&lt;/b&gt;" in result["body"] and "<b>" not in result["body"]


def test_a_page_route_answers_head_without_a_body_and_405_as_a_page() -> None:
    assert page_call("HEAD", "/page")["body"] == ""
    refused = page_call("POST", "/page")
    assert refused["statusCode"] == 405 and refused["headers"]["Allow"] == "GET, HEAD"
    assert refused["body"].startswith("<!doctype html>")


def test_a_page_route_dependency_failure_is_a_503_page() -> None:
    result = page_call("GET", "/page/aws")
    assert result["statusCode"] == 503 and result["headers"]["Retry-After"] == "1"
    assert "Throttling" not in result["body"] and result["body"].startswith("<!doctype html>")


def test_a_redirect_route_sends_the_error_back_with_state_and_iss() -> None:
    result = page_call("GET", "/authorize", "state=xyz")
    assert result["statusCode"] == 302
    location = urlsplit(result["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://client.example/cb"
    assert parse_qsl(location.query) == [
        ("keep", "1"),
        ("error", "access_denied"),
        ("state", "xyz"),
        ("iss", ISS),
    ]
    assert result["headers"]["Cache-Control"] == "no-store"


def test_a_redirect_without_state_omits_it_and_codes_stay_within_rfc_6749() -> None:
    location = page_call("GET", "/authorize", "error=not_found")["headers"]["Location"]
    query = dict(parse_qsl(urlsplit(location).query))
    assert query == {"keep": "1", "error": "server_error", "iss": ISS}


@pytest.mark.parametrize("error", ["before_validation", "bug"])
def test_a_redirect_route_never_redirects_an_error_raised_before_the_uri_was_validated(error: str) -> None:
    result = page_call("GET", "/authorize", f"error={error}")
    assert result["statusCode"] in (400, 500) and "Location" not in result["headers"]
    assert result["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "secret internals" not in result["body"]


@pytest.mark.parametrize(
    ("path", "content_type"), [("/page/redirect", "text/html"), ("/json/redirect", "application/json")]
)
def test_only_a_redirect_route_redirects(path: str, content_type: str) -> None:
    result = page_call("GET", path)
    assert result["statusCode"] == 403 and "Location" not in result["headers"]
    assert result["headers"]["Content-Type"].startswith(content_type)


def test_a_path_has_one_kind() -> None:
    with pytest.raises(ValueError, match="already registered"):
        pages.route("/page", ("POST",), kind=RouteKind.JSON)


# --- the one layout ----------------------------------------------------------------------------------


def test_the_layout_escapes_everything_it_is_given() -> None:
    evil = "<script>x</script>\"'&"
    view = PageView(
        title=evil,
        message=evil,
        facts=((evil, evil),),
        quote=Quote(evil, evil),
        form=PageForm((Button(evil, evil, evil),), ((evil, evil),)),
    )
    body = render(view)
    assert "<script>" not in body and "\"'&" not in body
    assert body.count("&lt;script&gt;") == 12  # title twice, message, 2 fact, 2 quote, 3 button, 2 hidden


def test_a_form_is_a_plain_form_posting_to_its_own_page() -> None:
    body = render(PageView("T", "M", form=PageForm((Button("Go", "go", "1"),), (("a", "b"),))))
    assert '<form method="post"><input type="hidden" name="a" value="b">' in body
    assert "action=" not in body and "<script" not in body


def test_the_page_headers_allow_only_the_layouts_own_style() -> None:
    import base64
    import hashlib

    csp = PAGE_HEADERS["Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "base-uri 'none'" in csp
    assert (
        "form-action 'self' https://client.example"
        in page_headers(form_targets=["https://client.example"])["Content-Security-Policy"]
    )
