"""Sign-in through the development OpenID provider over real HTTP: the real RelyingParty and the real
urllib HttpClient against oidc_routes served by a ThreadingHTTPServer, as `agent-auth dev` will mount
them. Also the HttpClient's refusals (redirects, oversize, non-JSON, slow answers, plain http)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from agent_auth.adapters.http_client import UrllibHttpClient
from agent_auth.clock import FixedClock
from agent_auth.devserver.events import rest_proxy_event
from agent_auth.devserver.oidc_provider import dev_issuer, oidc_routes
from agent_auth.oauth.upstream.relying_party import (
    RelyingParty,
    UpstreamConfig,
    UpstreamRejected,
    UpstreamUnavailable,
)

CLIENT_ID = "agent-auth"
CLIENT_SECRET = "dev-secret-with:colon+plus"
Handler = Callable[[dict[str, Any], object], dict[str, Any]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Handler]


class _ToProxyEvent(BaseHTTPRequestHandler):
    """A minimal dev server: request -> API Gateway proxy event -> the handler mounted at that path."""

    server: _Server

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        handler = self.server.routes.get(path)
        if handler is None:
            self.send_error(404)
            return
        event = rest_proxy_event(
            method=self.command, path=path, query=query, headers=list(self.headers.items()), body=body
        )
        result = handler(event, None)
        data = (result.get("body") or "").encode()
        self.send_response(result["statusCode"])
        for name, value in (result.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)  # unless the client gave up (the timeout and size tests), as it should

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Provider:
    base_url: str
    issuer: str
    clock: FixedClock
    redirect_uri: str

    def relying_party(self, **overrides: str) -> RelyingParty:
        config = UpstreamConfig(
            issuer=self.issuer,
            client_id=overrides.get("client_id", CLIENT_ID),
            client_secret=overrides.get("client_secret", CLIENT_SECRET),
            redirect_uri=self.redirect_uri,
        )
        return RelyingParty(config, UrllibHttpClient(), self.clock)


def serve(routes_for: Callable[[str], dict[str, Handler]]) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _ToProxyEvent)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    server.routes = routes_for(base_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    clock = FixedClock(time.time())
    holder: dict[str, str] = {}

    def routes(base_url: str) -> dict[str, Handler]:
        holder["redirect_uri"] = f"{base_url}/authorize/callback"
        return oidc_routes(
            base_url,
            clock,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uri=holder["redirect_uri"],
        )

    for base_url in serve(routes):
        yield Provider(base_url, dev_issuer(base_url), clock, holder["redirect_uri"])


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("name"):
            self.inputs[str(values["name"])] = values.get("value") or ""
        self._in_button = tag == "button"

    def handle_data(self, data: str) -> None:
        if self._in_button:
            self.buttons.append(data)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


BROWSER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def fetch(url: str, data: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """What a browser would get, without following a redirect."""
    request = urllib.request.Request(url, data=urlencode(data).encode() if data is not None else None)
    try:
        with BROWSER.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def sign_in(authorization_url: str, username: str = "alice@example.com", groups: str = "") -> dict[str, str]:
    """Open the sign-in page, submit its form, and return the query of the redirect."""
    status, headers, page = fetch(authorization_url)
    assert status == 200, page
    form = _Inputs()
    form.feed(page)
    action = urlsplit(authorization_url)._replace(query="").geturl()  # action="authorize": this path
    status, headers, _ = fetch(action, {**form.inputs, "username": username, "groups": groups})
    assert status == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(headers["Location"]).query).items()}


# --- the sign-in --------------------------------------------------------------------------------------


def test_a_user_signs_in_through_the_development_provider(provider: Provider) -> None:
    rp = provider.relying_party()
    url, request = rp.begin()
    assert url.startswith(f"{provider.issuer}/authorize?")

    status, headers, page = fetch(url)
    form = _Inputs()
    form.feed(page)
    assert status == 200 and "<script" not in page.lower()
    assert {"username", "groups"} <= set(form.inputs) and form.buttons == ["Sign in"]
    assert form.inputs["state"] == request.state and form.inputs["nonce"] == request.nonce
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]

    callback = rp.callback(sign_in(url, groups="support, admins,"))
    assert callback.state == request.state
    identity = rp.complete(callback.code, nonce=request.nonce, code_verifier=request.code_verifier)
    assert identity.email == "alice@example.com" and identity.email_verified is True
    assert identity.groups == ("support", "admins")
    assert identity.subject and identity.subject != identity.email


def test_a_code_is_single_use(provider: Provider) -> None:
    rp = provider.relying_party()
    url, request = rp.begin()
    code = rp.callback(sign_in(url)).code
    rp.complete(code, nonce=request.nonce, code_verifier=request.code_verifier)
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete(code, nonce=request.nonce, code_verifier=request.code_verifier)
    assert refused.value.reason == "token_error:invalid_grant"


def test_a_wrong_verifier_is_refused_and_spends_the_code(provider: Provider) -> None:
    rp = provider.relying_party()
    url, request = rp.begin()
    code = rp.callback(sign_in(url)).code
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete(code, nonce=request.nonce, code_verifier="x" * 43)
    assert refused.value.reason == "token_error:invalid_grant"
    with pytest.raises(UpstreamRejected):
        rp.complete(code, nonce=request.nonce, code_verifier=request.code_verifier)


def test_a_code_expires_after_a_minute_of_the_injected_clock(provider: Provider) -> None:
    rp = provider.relying_party()
    url, request = rp.begin()
    code = rp.callback(sign_in(url)).code
    provider.clock.advance(61)
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete(code, nonce=request.nonce, code_verifier=request.code_verifier)
    assert refused.value.reason == "token_error:invalid_grant"


def test_another_client_is_refused_at_the_sign_in_page_and_at_the_token_endpoint(provider: Provider) -> None:
    url, _ = provider.relying_party(client_id="someone-else").begin()
    status, headers, page = fetch(url)
    assert status == 400 and "Location" not in headers and 'name="username"' not in page

    rp = provider.relying_party()
    url, request = rp.begin()
    code = rp.callback(sign_in(url)).code
    for impostor in (
        provider.relying_party(client_secret="wrong-secret"),
        provider.relying_party(client_id="someone-else"),
    ):
        with pytest.raises(UpstreamRejected) as refused:
            impostor.complete(code, nonce=request.nonce, code_verifier=request.code_verifier)
        assert refused.value.reason == "token_error:invalid_client"
    # Refused before the code was looked at: the real client can still redeem it.
    assert rp.complete(code, nonce=request.nonce, code_verifier=request.code_verifier).email


def test_the_form_is_validated_again_when_posted(provider: Provider) -> None:
    url, _ = provider.relying_party().begin()
    form = _Inputs()
    form.feed(fetch(url)[2])
    action = f"{provider.issuer}/authorize"
    status, headers, _ = fetch(
        action, {**form.inputs, "redirect_uri": "https://evil.example.com/cb", "username": "a@b.co"}
    )
    assert status == 400 and "Location" not in headers
    status, _, page = fetch(action, {**form.inputs, "username": "not-an-email"})
    assert status == 400 and "Enter an email address." in page and 'name="username"' in page


def test_the_provider_errors_come_back_to_the_relying_party(provider: Provider) -> None:
    rp = provider.relying_party()
    url, _ = rp.begin()
    status, headers, _ = fetch(url.replace("code_challenge_method=S256", "code_challenge_method=plain"))
    assert status == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(headers["Location"]).query).items()}
    assert params["iss"] == provider.issuer
    with pytest.raises(UpstreamRejected) as refused:
        rp.callback(params)
    assert refused.value.reason == "provider_error:invalid_request"


def test_the_token_endpoint_is_post_only_and_never_cached(provider: Provider) -> None:
    status, headers, _ = fetch(f"{provider.issuer}/token")
    assert status == 405 and headers["Allow"] == "POST"
    status, headers, body = fetch(f"{provider.issuer}/token", {"grant_type": "authorization_code"})
    assert status == 401 and json.loads(body)["error"] == "invalid_client"
    assert headers["Cache-Control"] == "no-store"


def test_the_token_endpoint_binds_the_redirect_uri_and_takes_one_auth_method(provider: Provider) -> None:
    """RFC 6749 §4.1.3 (the same redirect_uri) and §2.3 (client_secret_post, not two methods at once)."""
    client = UrllibHttpClient()
    token_endpoint = f"{provider.issuer}/token"
    secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    def code_and_verifier() -> tuple[str, str]:
        rp = provider.relying_party()
        url, request = rp.begin()
        return rp.callback(sign_in(url)).code, request.code_verifier

    code, verifier = code_and_verifier()
    grant = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    answer = client.post_form(
        token_endpoint, {**grant, **secret, "redirect_uri": f"{provider.redirect_uri}/x"}
    )
    assert answer["error"] == "invalid_grant"

    code, verifier = code_and_verifier()
    grant = {**grant, "code": code, "code_verifier": verifier, "redirect_uri": provider.redirect_uri}
    answer = client.post_form(token_endpoint, {**grant, **secret}, basic_auth=(CLIENT_ID, CLIENT_SECRET))
    assert answer["error"] == "invalid_request"
    answer = client.post_form(token_endpoint, {**grant, **secret})
    assert answer["token_type"] == "Bearer" and answer["id_token"].count(".") == 2


# --- the HttpClient's refusals ------------------------------------------------------------------------


def _respond(status: int, body: str, content_type: str = "application/json", **headers: str) -> Handler:
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": status, "headers": {"Content-Type": content_type, **headers}, "body": body}

    return handler


def _slow(event: dict[str, Any], context: object) -> dict[str, Any]:
    time.sleep(1.5)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    def routes(base_url: str) -> dict[str, Handler]:
        return {
            "/ok": _respond(200, '{"fine": true}', "application/jwk-set+json"),
            "/redirect": _respond(302, "{}", Location=f"{base_url}/ok"),
            "/big": _respond(200, json.dumps({"pad": "x" * (1024 * 1024)})),
            "/html": _respond(200, "<html></html>", "text/html"),
            "/array": _respond(200, "[1, 2]"),
            "/duplicate": _respond(200, '{"issuer": "a", "issuer": "b"}'),
            "/error": _respond(400, '{"error": "invalid_grant"}'),
            "/unavailable": _respond(503, '{"error": "temporarily_unavailable"}'),
            "/slow": _slow,
        }

    yield from serve(routes)


def refusal(call: Callable[[], object]) -> str:
    with pytest.raises(UpstreamUnavailable) as refused:
        call()
    return refused.value.reason


def test_the_http_client_reads_json_objects_and_refuses_everything_else(hostile: str) -> None:
    client = UrllibHttpClient(timeout=0.5)
    assert client.get_json(f"{hostile}/ok") == {"fine": True}
    assert refusal(lambda: client.get_json(f"{hostile}/redirect")) == "redirect"
    assert refusal(lambda: client.get_json(f"{hostile}/big")) == "too_large"
    assert refusal(lambda: client.get_json(f"{hostile}/html")) == "not_json"
    assert refusal(lambda: client.get_json(f"{hostile}/array")) == "not_json"
    assert refusal(lambda: client.get_json(f"{hostile}/duplicate")) == "not_json"
    assert refusal(lambda: client.get_json(f"{hostile}/slow")) == "timeout"
    assert refusal(lambda: client.get_json(f"{hostile}/unavailable")) == "http_503"
    assert refusal(lambda: client.get_json(f"{hostile}/error")) == "http_400"
    assert client.post_form(f"{hostile}/error", {"a": "b"}) == {"error": "invalid_grant"}
    assert refusal(lambda: client.post_form(f"{hostile}/unavailable", {})) == "http_503"


def test_the_http_client_needs_https_except_on_loopback() -> None:
    client = UrllibHttpClient()
    for url in ("http://idp.example.com/x", "file:///etc/passwd", "https://user:pw@idp.example.com/x"):
        assert refusal(lambda url=url: client.get_json(url)) == "refused_url"  # type: ignore[misc]
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    assert refusal(lambda: client.get_json(f"http://localhost:{port}/x")) == "network"
