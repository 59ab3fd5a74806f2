"""Validating /authorize requests: redirect URIs, PKCE, state, scope and resource (RFC 6749 §4.1.1,
§4.1.2.1, §3.1.2; RFC 7636; RFC 8707; RFC 8252 §7.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agent_auth.oauth.authorize.pkce import challenge_for, verifier_matches
from agent_auth.oauth.authorize.redirect_uris import redirect_uri_matches
from agent_auth.oauth.authorize.request import (
    AuthorizePageError,
    AuthorizeRedirectError,
    validate_authorization_request,
)
from agent_auth.records import Agent, Delegation

REGISTERED = ("https://app.example.com/cb", "http://127.0.0.1:8765/callback", "http://[::1]/cb")
CRM, BILLING = "https://crm.example.com", "https://billing.example.com"
AGENT = Agent(
    client_id="mcp-client",
    owner="owner@example.com",
    auth_method="none",
    audiences={"crm": CRM, "billing": BILLING},
    never=frozenset({"crm.delete"}),
    delegation=Delegation(
        redirect_uris=REGISTERED,
        scopes=("crm.read", "crm.write", "crm.delete"),
        scope_audiences={"crm.read": "crm", "crm.write": "crm", "crm.delete": "crm"},
    ),
)
VERIFIER = "x" * 50


def params(**overrides: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "mcp-client",
        "redirect_uri": "https://app.example.com/cb",
        "state": "s-1",
        "code_challenge": challenge_for(VERIFIER),
        "code_challenge_method": "S256",
        "scope": "crm.read",
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "http://127.0.0.1:8765/callback",
        "http://127.0.0.1:51234/callback",  # any port on loopback (native apps)
        "http://127.0.0.1/callback",
        "http://[::1]:4000/cb",
    ],
)
def test_registered_uris_match_and_loopback_ports_may_vary(uri: str) -> None:
    assert redirect_uri_matches(uri, REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb/",  # path suffix
        "https://app.example.com/cb?x=1",  # query added
        "https://app.example.com/cb#frag",  # fragment
        "https://app.example.com.evil.com/cb",  # host suffix
        "https://evil.com@app.example.com/cb",  # userinfo
        "https://APP.example.com/cb",  # case
        "http://app.example.com/cb",  # scheme
        "https://app.example.com/cb/../cb",  # path trick
        "http://localhost:8765/callback",  # only the literal loopback addresses are loose
        "http://user@127.0.0.1:8765/callback",
        "http://127.0.0.1:8765/callback/../x",
        "http://127.0.0.2:8765/callback",
        "http://127.0.0.1:99999/callback",
    ],
)
def test_near_misses_do_not_match(uri: str) -> None:
    assert not redirect_uri_matches(uri, REGISTERED)


def test_pkce_s256() -> None:
    assert verifier_matches(VERIFIER, challenge_for(VERIFIER))
    assert not verifier_matches("y" * 50, challenge_for(VERIFIER))
    assert not verifier_matches("short", challenge_for("short"))  # RFC 7636: 43 to 128 characters


def test_a_valid_request() -> None:
    request = validate_authorization_request(params(), AGENT)
    assert request.scopes == ("crm.read",) and request.audience == CRM and request.state == "s-1"


@pytest.mark.parametrize(
    ("overrides", "agent", "reason"),
    [
        ({"client_id": None}, AGENT, "missing_client_id"),
        ({"client_id": "ghost"}, None, "unknown_client"),
        ({}, replace(AGENT, delegation=None), "unknown_client"),
        ({"redirect_uri": None}, AGENT, "redirect_uri_not_registered"),
        ({"redirect_uri": "https://evil.example.com/cb"}, AGENT, "redirect_uri_not_registered"),
    ],
)
def test_before_the_client_and_redirect_uri_are_trusted_errors_are_a_page(
    overrides: dict[str, Any], agent: Agent | None, reason: str
) -> None:
    with pytest.raises(AuthorizePageError) as refused:
        validate_authorization_request(params(**overrides), agent)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("overrides", "error", "reason"),
    [
        ({"response_type": "token"}, "unsupported_response_type", "response_type_not_code"),
        ({"code_challenge": None}, "invalid_request", "pkce_s256_required"),
        ({"code_challenge_method": "plain"}, "invalid_request", "pkce_s256_required"),
        ({"code_challenge_method": None}, "invalid_request", "pkce_s256_required"),
        ({"code_challenge": "short"}, "invalid_request", "pkce_s256_required"),
        ({"resource": "https://unknown.example.com"}, "invalid_target", "resource_not_allowed"),
        ({"resource": "https://crm.example.com#x"}, "invalid_target", "malformed_resource"),
        ({"scope": "crm.delete"}, "access_denied", "no_scope_left"),  # `never` wins over delegation
        ({"scope": "billing.read"}, "access_denied", "no_scope_left"),
        ({"scope": 'a"b'}, "invalid_scope", "malformed_scope"),
        ({"prompt": "select_account"}, "invalid_request", "unsupported_prompt"),
    ],
)
def test_after_they_are_errors_redirect_with_state(
    overrides: dict[str, Any], error: str, reason: str
) -> None:
    with pytest.raises(AuthorizeRedirectError) as refused:
        validate_authorization_request(params(**overrides), AGENT)
    assert (refused.value.error, refused.value.reason) == (error, reason)
    assert refused.value.redirect_uri == "https://app.example.com/cb" and refused.value.state == "s-1"


@pytest.mark.parametrize("state", ["a\r\nLocation: https://evil", "x" * 513])
def test_a_state_with_control_characters_or_too_long_is_refused_and_not_echoed(state: str) -> None:
    with pytest.raises(AuthorizeRedirectError) as refused:
        validate_authorization_request(params(state=state), AGENT)
    assert refused.value.state is None


def test_markup_in_state_is_echoed_as_data_only() -> None:
    """The redirect URL-encodes it; no page ever renders it (checked where the redirect is built)."""
    assert validate_authorization_request(params(state="<script>"), AGENT).state == "<script>"


def test_scope_comes_out_narrower_never_wider() -> None:
    request = validate_authorization_request(params(scope="crm.read crm.write admin openid"), AGENT)
    assert request.scopes == ("openid", "crm.read", "crm.write")


def test_without_scope_the_delegation_scopes_apply() -> None:
    request = validate_authorization_request(params(scope=None), AGENT)
    assert request.scopes == ("crm.read", "crm.write") and request.audience == CRM


def test_resource_compares_scheme_and_host_without_case() -> None:
    assert validate_authorization_request(params(resource="HTTPS://CRM.example.com"), AGENT).audience == CRM


def test_offline_access_only_where_the_delegation_allows_it() -> None:
    agent = replace(AGENT, delegation=replace(AGENT.delegation, offline_access=False))  # type: ignore[arg-type]
    assert validate_authorization_request(params(scope="offline_access crm.read"), agent).scopes == (
        "crm.read",
    )
    assert (
        "offline_access"
        in validate_authorization_request(params(scope="offline_access crm.read"), AGENT).scopes
    )


@pytest.mark.parametrize(
    ("repeated", "error"),
    [({"resource"}, "invalid_target"), ({"scope"}, "invalid_request"), ({"state"}, "invalid_request")],
)
def test_repeated_parameters_are_refused_not_guessed(repeated: set[str], error: str) -> None:
    with pytest.raises(AuthorizeRedirectError) as refused:
        validate_authorization_request(params(), AGENT, frozenset(repeated))
    assert refused.value.error == error


def test_a_repeated_redirect_uri_is_a_page() -> None:
    with pytest.raises(AuthorizePageError):
        validate_authorization_request(params(), AGENT, frozenset({"redirect_uri"}))
