"""Login CSRF through the authorize handler on moto, with the development OpenID provider over real HTTP:
the sign-in's cookie is set at /authorize, the callback completes only with it (RFC 9700 §4.7.1), the
session and the cleared sign-in cookie both reach API Gateway (multiValueHeaders); and the kill switch
at /authorize."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from agent_auth.clock import FixedClock
from agent_auth.devserver.events import rest_proxy_event
from agent_auth.devserver.oidc_provider import dev_issuer, oidc_routes
from agent_auth.handlers import authorize
from agent_auth.oauth.authorize.pkce import challenge_for
from agent_auth.operations.agents import disable_agent
from agent_auth.web.function import Container
from tests.conftest import ISSUER, Deployment
from tests.integration.test_upstream_sign_in import CLIENT_ID, CLIENT_SECRET, serve, sign_in

pytestmark = pytest.mark.usefixtures("clock")
REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.fixture
def d(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """The deployment, its authorize function a relying party of the development provider."""

    def routes(base_url: str) -> dict[str, Any]:
        redirect_uri = f"{ISSUER}/authorize/callback"
        clock = FixedClock(time.time())
        return oidc_routes(
            base_url, clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=redirect_uri
        )

    for base_url in serve(routes):
        monkeypatch.setenv("UPSTREAM_ISSUER", dev_issuer(base_url))
        monkeypatch.setenv("UPSTREAM_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("UPSTREAM_CLIENT_SECRET", CLIENT_SECRET)
        Container.reset_all()
        yield deployment
        Container.reset_all()


def call(path: str, query: dict[str, str], cookies: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    headers = [("Cookie", "; ".join(cookies))] if cookies else []
    event = rest_proxy_event(method="GET", path=path, query=urlencode(query), headers=headers)
    return authorize.lambda_handler(event, None)


def start(state: str = "client-state") -> tuple[str, str]:
    """GET /authorize with no session: the provider's URL, and the cookie pair it set (name=value)."""
    result = call(
        "/authorize",
        {
            "response_type": "code",
            "client_id": "public-app",
            "redirect_uri": REDIRECT,
            "state": state,
            "code_challenge": challenge_for("v" * 43),
            "code_challenge_method": "S256",
            "scope": "crm.contacts.read",
        },
    )
    assert result["statusCode"] == 302, result["body"]
    cookie = result["headers"]["Set-Cookie"]
    assert cookie.startswith("__Host-agent-auth-sign-in-")
    assert {"Path=/", "HttpOnly", "SameSite=Lax", "Secure", "Max-Age=600"} <= set(cookie.split("; ")[1:])
    return result["headers"]["Location"], cookie.split("; ")[0]


def reasons(d: Deployment, action: str) -> list[str]:
    """The reasons of the audit records of `action`, sorted (records of one second have no order)."""
    return sorted(str(r.get("reason")) for r in d.audit_records() if r["action"] == action)


def sign_in_items(d: Deployment) -> list[dict[str, Any]]:
    return [i for i in d.scan(d.settings.signins_table) if i["pk"]["S"].startswith("signin#")]


def test_the_callback_completes_in_the_browser_that_started_it(d: Deployment) -> None:
    location, cookie = start()
    back = sign_in(location)
    result = call("/authorize/callback", back, [cookie])
    assert result["statusCode"] == 302
    assert result["headers"]["Location"].startswith(f"{ISSUER}/authorize/consent?request=")
    # API Gateway sends both: the session, and the sign-in's cookie cleared.
    session, cleared = result["multiValueHeaders"]["Set-Cookie"]
    assert session.startswith("__Host-agent-auth-session=") and result["headers"]["Set-Cookie"] == session
    assert cleared.startswith(cookie.split("=")[0] + "=; Path=/") and cleared.endswith("Max-Age=0")
    assert reasons(d, "authorize.sign_in") == ["consent_required"]


def test_a_callback_url_opened_in_another_browser_is_refused_and_ends_the_sign_in(d: Deployment) -> None:
    location, cookie = start()
    (item,) = sign_in_items(d)
    assert item["browser_hash"]["S"] and cookie.split("=", 1)[1] not in str(item)  # only its hash
    back = sign_in(location)  # the sender signs in as themselves, and sends this URL on
    for others in ([], ["__Host-agent-auth-session=whatever"], [cookie.split("=")[0] + "=forged"]):
        result = call("/authorize/callback", back, others)
        assert result["statusCode"] == 400 and "Sign-in cannot continue" in result["body"]
        assert "agent-auth-session" not in str(result["headers"].get("Set-Cookie"))
        assert "multiValueHeaders" not in result
    # One record each: the first refusal ended the sign-in, so the next two found none.
    assert reasons(d, "authorize.sign_in") == [
        "sign_in_not_from_this_browser",
        "unknown_sign_in_state",
        "unknown_sign_in_state",
    ]
    assert sign_in_items(d) == []  # ended: nothing is left to complete
    replayed = call("/authorize/callback", back, [cookie])  # not even by the browser that started it
    assert replayed["statusCode"] == 400
    assert reasons(d, "authorize.sign_in").count("unknown_sign_in_state") == 3
    sessions = [i for i in d.scan(d.settings.signins_table) if i["pk"]["S"].startswith("session#")]
    assert sessions == []


def test_sign_ins_in_parallel_tabs_both_complete(d: Deployment) -> None:
    (first, first_cookie), (second, second_cookie) = start("tab-1"), start("tab-2")
    assert first_cookie.split("=")[0] != second_cookie.split("=")[0]
    first_back, second_back = sign_in(first), sign_in(second)
    jar = [first_cookie, second_cookie]  # the browser sends every cookie it holds
    for back in (second_back, first_back):
        result = call("/authorize/callback", back, jar)
        assert result["statusCode"] == 302, result["body"]
        assert "/authorize/consent?" in result["headers"]["Location"]


def test_a_disabled_agent_cannot_start_authorize(d: Deployment) -> None:
    disable_agent(d.target, "public-app")
    result = call(
        "/authorize",
        {
            "response_type": "code",
            "client_id": "public-app",
            "redirect_uri": REDIRECT,
            "state": "s",
            "code_challenge": challenge_for("v" * 43),
            "code_challenge_method": "S256",
        },
    )
    assert result["statusCode"] == 400 and "disabled" in result["body"]
    assert "Location" not in result["headers"] and "Set-Cookie" not in result["headers"]
    assert sign_in_items(d) == []
    [record] = [r for r in d.audit_records() if r["action"] == "authorize.request"]
    assert (record["action"], record["decision"], record["reason"], record["client_id"]) == (
        "authorize.request",
        "deny",
        "agent_disabled",
        "public-app",
    )
    assert urlsplit(REDIRECT).netloc not in result["body"]
