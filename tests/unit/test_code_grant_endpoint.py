"""The authorization code grant through the token endpoint's shell: a public agent sends client_id and
relies on PKCE; a confidential agent authenticates as for client credentials and may also send its
client_id in the body (the mcp SDK does), which must match (product.md, RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from agent_auth.clock import FixedClock
from agent_auth.errors import InvalidClient, InvalidRequest
from agent_auth.oauth import client_secrets
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.grant_types.authorization_code import AuthorizationCodeGrant
from agent_auth.oauth.grant_types.registry import GrantTypeRegistry
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request
from tests.unit.fakes import FakeAudit, FakeClients, FakeReplay, LocalSigner, NoKeys
from tests.unit.test_code_and_refresh_grants import NOW, REDIRECT, VERIFIER, Codes, Refresh, Transaction

SECRET = client_secrets.generate_secret()
DELEGATION = {"redirect_uris": [REDIRECT], "scopes": ["crm.read"], "scope_audiences": {"crm.read": "crm"}}
PUBLIC = {
    "client_id": "mcp-client",
    "owner": "o@example.com",
    "auth_method": "none",
    "delegation": DELEGATION,
}
CONFIDENTIAL = {
    "client_id": "support-bot",
    "owner": "o@example.com",
    "auth_method": "client_secret_basic",
    "secret_hash": client_secrets.hash_secret(SECRET),
    "delegation": DELEGATION,
}


def endpoint(codes: Codes, audit: FakeAudit) -> ClientEndpoint:
    clock = FixedClock(NOW)
    issuer = TokenIssuer(issuer="https://as.example.com", signer=LocalSigner(), lifetime=300)
    grant = AuthorizationCodeGrant(issuer, codes=codes, refresh=Refresh(), transaction=Transaction())
    verifier = AssertionVerifier(audiences=("https://as",), replay=FakeReplay(), keys=NoKeys(), clock=clock)
    return ClientEndpoint(
        operation=TokenOperation(GrantTypeRegistry(grant)),
        authenticator=ClientAuthenticator(FakeClients(PUBLIC, CONFIDENTIAL), verifier),
        audit=audit,
        clock=clock,
    )


def request(code: str, client_id: str | None, **headers: str) -> Request:
    body = f"grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
    if client_id:
        body += f"&client_id={client_id}"
    return Request(
        method="POST",
        path="/token",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
        body=body.encode(),
        source_ip="198.51.100.3",
        http_request_id="r-1",
    )


def basic(client_id: str, secret: str) -> dict[str, Any]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_a_public_agent_redeems_with_its_client_id_and_pkce() -> None:
    codes, audit = Codes(), FakeAudit()
    codes.add(code := opaque.new_code(), scopes=("crm.read",))
    outcome = endpoint(codes, audit).handle(request(code, "mcp-client"))
    assert outcome.response["scope"] == "crm.read" and outcome.user == "alice@example.com"
    [record] = audit.records
    assert (
        record.client_id == "mcp-client"
        and record.auth_method == "none"
        and record.user == "alice@example.com"
    )


def test_a_confidential_agent_may_also_send_its_client_id_in_the_body() -> None:
    codes = Codes()
    codes.add(code := opaque.new_code(), client_id="support-bot", scopes=("crm.read",))
    outcome = endpoint(codes, FakeAudit()).handle(
        request(code, "support-bot", **basic("support-bot", SECRET))
    )
    assert outcome.response["token_type"] == "Bearer"


def test_a_client_id_in_the_body_must_match_the_authenticated_one() -> None:
    codes, audit = Codes(), FakeAudit()
    codes.add(code := opaque.new_code(), client_id="support-bot")
    with pytest.raises(InvalidRequest):
        endpoint(codes, audit).handle(request(code, "mcp-client", **basic("support-bot", SECRET)))
    assert audit.records[0].reason == "client_id_mismatch"


def test_a_confidential_agent_cannot_redeem_by_naming_itself() -> None:
    codes, audit = Codes(), FakeAudit()
    codes.add(code := opaque.new_code(), client_id="support-bot")
    with pytest.raises(InvalidClient):
        endpoint(codes, audit).handle(request(code, "support-bot"))
    assert audit.records[0].reason == "method_not_registered"
    assert not codes.items[opaque.digest(code)].redeemed  # refused before the code was touched
