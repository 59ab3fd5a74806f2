"""How the authorization flow's outcomes reach the browser (handlers/authorize.py): the sign-in session
cookie is `__Host-`, Secure (except on a plain-http loopback issuer), HttpOnly and SameSite=Lax; the
consent page may not be framed and its form may end only here or at the client's redirect URI."""

from __future__ import annotations

from typing import Any

import pytest

from agent_auth.audit import AuditRecord
from agent_auth.handlers.authorize import SESSION, _Pages, consent_binding
from agent_auth.oauth.authorize.flow import SESSION_SECONDS, ConsentPage, FlowOutcome, Redirect
from agent_auth.records import Agent
from agent_auth.web.browser_endpoint import CsrfTokens

RECORD = AuditRecord(action="authorize.sign_in", decision="allow", at=0)


def respond(result: Any, *, secure: bool) -> Any:
    return _Pages(flow=None, secure=secure).respond(FlowOutcome(result, RECORD))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secure", "name"), [(True, "__Host-agent-auth-session"), (False, "agent-auth-session")]
)
def test_the_session_cookie_flags(secure: bool, name: str) -> None:
    outcome = respond(
        Redirect("https://as.example.com/authorize/consent?request=x", new_session="s3cr3t"), secure=secure
    )
    cookie = outcome.set_cookie
    assert outcome.redirect and cookie.startswith(f"{name}=s3cr3t; Path=/")
    flags = set(cookie.split("; ")[1:])
    assert {"Path=/", "HttpOnly", "SameSite=Lax", f"Max-Age={SESSION_SECONDS}"} <= flags
    assert ("Secure" in flags) is secure and not any(f.startswith("Domain") for f in flags)
    assert SESSION.cookie_name(secure) == name


def test_a_redirect_without_a_new_session_sets_no_cookie() -> None:
    assert respond(Redirect("http://127.0.0.1:8765/callback?code=c"), secure=True).set_cookie is None


def test_the_consent_form_may_end_at_the_redirect_uri_only() -> None:
    page = ConsentPage(
        sign_in_id="s" * 32,
        agent=Agent("mcp-client", "owner@example.com", "none"),
        user="alice@example.com",
        redirect_host="127.0.0.1:8765",
        redirect_origin="http://127.0.0.1:8765",
        audience="https://crm.example.com",
        scopes=(("crm.read", "Read contacts"),),
    )
    outcome = respond(page, secure=True)
    assert outcome.status == 200 and outcome.form_targets == ("http://127.0.0.1:8765",)
    facts = dict(outcome.view.facts)
    assert facts["Agent"] == "mcp-client" and facts["Owner"] == "owner@example.com"
    assert facts["Signed in as"] == "alice@example.com" and facts["Returns to"] == "127.0.0.1:8765"
    assert "crm.read (Read contacts)" in facts["Scopes"]


def test_the_consent_csrf_token_is_bound_to_the_session_and_the_sign_in() -> None:
    token = CsrfTokens.token(CsrfTokens.nonce(), consent_binding("session-a", "sign-in-1"))
    assert CsrfTokens.verify(token, token, consent_binding("session-a", "sign-in-1"))
    assert not CsrfTokens.verify(token, token, consent_binding("session-b", "sign-in-1"))
    assert not CsrfTokens.verify(token, token, consent_binding("session-a", "sign-in-2"))
    assert not CsrfTokens.verify(token, token, consent_binding(None, "sign-in-1"))
