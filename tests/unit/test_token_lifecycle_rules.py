"""Token lifecycle rules at the lowest level: the `resource_servers` policy key, the claims a revocation
reaches a token through, and introspection's answer for what is not the caller's business."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pytest

from agent_auth.adapters.records_codec import agent_from_item
from agent_auth.clock import FixedClock
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.lifecycle.introspection import IntrospectionOperation
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.oauth.tokens.validator import AccessTokenClaims, AccessTokenValidator, TokenStatus
from agent_auth.policy.compiler import compile_policy, parse_policy
from agent_auth.policy.source import PolicyInvalid
from tests.unit.fakes import LocalSigner
from tests.unit.test_token_validator import Published

ISSUER = "https://auth.example.com"
NOW = 1_800_000_000
SIGNER = LocalSigner()
POLICY = """\
version: 1
audiences:
  crm:
    uri: https://crm.example.com
    scopes: {crm.read: Read}
    resource_servers: [crm-api]
roles:
  reader: [crm.read]
agents:
  bot:
    owner: owner@example.com
    auth: client_secret_basic
    roles: [reader]
  crm-api:
    owner: owner@example.com
    auth: client_secret_basic
"""


def test_an_audience_names_the_agents_of_its_resource_server() -> None:
    compiled = compile_policy(parse_policy("p.yaml", POLICY))
    assert compiled.agents["crm-api"]["serves"] == {"crm": "https://crm.example.com"}
    assert compiled.agents["bot"]["serves"] == {}


def test_a_resource_server_that_is_no_agent_is_refused_at_its_line() -> None:
    text = POLICY.replace("resource_servers: [crm-api]", "resource_servers: [crm-apy]")
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy("policy.yaml", textwrap.dedent(text))
    [problem] = [str(p) for p in caught.value.problems]
    assert "policy.yaml:6" in problem and "unknown agent 'crm-apy'" in problem


def test_the_claims_a_revocation_reaches_a_token_through() -> None:
    claims = AccessTokenClaims(
        {
            "jti": "t1",
            "token_family": "fam",
            "access_requests": ["req_a", "req_b", 7],
            "act": {"sub": "b", "act": {"sub": "a", "act": "not-a-chain"}},
        }
    )
    assert claims.token_family == "fam"
    assert claims.grant_ids == ("req_a", "req_b")
    assert claims.actors == ("b", "a")
    assert AccessTokenClaims({"access_request": "req_x"}).grant_ids == ("req_x",)


class Status:
    def __init__(self, revoked: str | None = None) -> None:
        self.revoked = revoked
        self.reads = 0

    def is_revoked(self, claims: Mapping[str, Any], now: int) -> bool:
        return self.status(claims, now).revoked is not None

    def status(self, claims: Mapping[str, Any], now: int) -> TokenStatus:
        self.reads += 1
        return TokenStatus(self.revoked)


def caller(client_id: str, serves: dict[str, str] | None = None) -> AuthenticatedClient:
    agent = agent_from_item(
        {"client_id": client_id, "auth_method": "client_secret_basic", "serves": serves or {}}
    )
    return AuthenticatedClient(client_id, "client_secret_basic", agent)


def operation(status: Status) -> IntrospectionOperation:
    validator = AccessTokenValidator(issuer=ISSUER, keys=Published(SIGNER), clock=FixedClock(NOW))
    return IntrospectionOperation(validator=validator, status=status)


def token(client_id: str = "bot", audience: str = "https://crm.example.com") -> str:
    issuance = Issuance(subject=client_id, client_id=client_id, audience=audience, scopes=("crm.read",))
    return TokenIssuer(issuer=ISSUER, signer=SIGNER, lifetime=300).issue(issuance, NOW).token


def introspect(status: Status, who: AuthenticatedClient, value: str) -> dict[str, object]:
    return operation(status).perform(who, Form({"token": [value]}), NOW).response


def test_a_foreign_token_is_inactive_without_reading_any_revocation() -> None:
    status = Status()
    assert introspect(status, caller("other"), token()) == {"active": False}
    assert status.reads == 0, "a token that is not the caller's business costs no read"


def test_a_served_audience_opens_the_token_and_a_revocation_closes_it() -> None:
    served = caller("crm-api", {"crm": "https://crm.example.com"})
    assert introspect(Status(), served, token())["active"] is True
    assert introspect(Status("agent_disabled"), served, token()) == {"active": False}
    assert introspect(Status(), served, token(audience="https://billing.example.com")) == {"active": False}


def test_a_code_or_refresh_family_from_before_a_disable_is_refused_after_enable() -> None:
    from dataclasses import replace

    from agent_auth.errors import InvalidGrant
    from tests.unit import test_code_and_refresh_grants as grants

    # Given a refresh token, and a code, both from before the agent's last disable (now enabled again)
    refresh = grants.Refresh()
    refresh_token = grants.first_refresh_token(refresh)
    codes = grants.Codes()
    codes.add(code := grants.opaque.new_code())
    enabled_again = replace(grants.AGENT, tokens_revoked_before=grants.NOW)

    # When the agent presents them
    with pytest.raises(InvalidGrant) as refused_code:
        ctx = grants.context(
            enabled_again, code=code, redirect_uri=grants.REDIRECT, code_verifier=grants.VERIFIER
        )
        grants.code_grant(codes, grants.Refresh()).validate(ctx)
    with pytest.raises(InvalidGrant) as refused_refresh:
        ctx = grants.context(
            enabled_again, now=grants.NOW + 5, grant_type="refresh_token", refresh_token=refresh_token
        )
        grants.refresh_grant(refresh).validate(ctx)

    # Then both are refused: the kill switch ended them, and enable does not bring them back
    assert refused_code.value.reason == "code_revoked_by_disable"
    assert refused_refresh.value.reason == "refresh_family_revoked_by_disable"
    # While a family begun after the disable refreshes as usual
    later = grants.context(
        replace(grants.AGENT, tokens_revoked_before=grants.NOW - 1),
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    assert grants.refresh_grant(refresh).validate(later).token_family is not None
