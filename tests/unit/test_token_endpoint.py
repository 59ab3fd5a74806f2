"""The token endpoint's rules with in-memory ports: client authentication, audit, fail-closed."""

from __future__ import annotations

import base64
from typing import Any
from unittest import mock

import pytest

from agent_auth.clock import FixedClock
from agent_auth.errors import DependencyFailure, InvalidClient, InvalidRequest, TemporarilyUnavailable
from agent_auth.oauth import client_secrets
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.grant_types.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.grant_types.registry import GrantTypeRegistry
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request
from tests.unit.fakes import FakeAudit, FakeClients, FakeReplay, LocalSigner, NoKeys

ISSUER = "https://auth.example.com"
SECRET = client_secrets.generate_secret()
AGENT = {
    "client_id": "bot",
    "auth_method": "client_secret_post",
    "secret_hash": client_secrets.hash_secret(SECRET),
    "scopes": {"crm.read": "crm"},
    "audiences": {"crm": "https://crm.example.com"},
    "never": [],
}


def build(
    audit: FakeAudit | None = None, signer: Any = None, clients: FakeClients | None = None
) -> ClientEndpoint:
    clock = FixedClock(1_800_000_000)
    verifier = AssertionVerifier(audiences=(ISSUER,), replay=FakeReplay(), keys=NoKeys(), clock=clock)
    return ClientEndpoint(
        authenticator=ClientAuthenticator(clients or FakeClients(AGENT), verifier),
        operation=TokenOperation(
            GrantTypeRegistry(
                ClientCredentialsGrant(
                    TokenIssuer(issuer=ISSUER, signer=signer or LocalSigner(), lifetime=300)
                )
            )
        ),
        audit=audit or FakeAudit(),
        clock=clock,
    )


def request(body: str, **headers: str) -> Request:
    return Request(
        method="POST",
        path="/token",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
        body=body.encode(),
        source_ip="198.51.100.1",
        http_request_id="req-1",
    )


GOOD = f"grant_type=client_credentials&client_id=bot&client_secret={SECRET}"


def test_issues_and_audits_once() -> None:
    audit = FakeAudit()
    response = build(audit).handle(request(GOOD)).response
    assert response["scope"] == "crm.read" and response["expires_in"] == 300
    [record] = audit.records
    assert record.decision == "allow" and record.client_id == "bot" and record.source_ip == "198.51.100.1"
    assert SECRET not in repr(record) and str(response["access_token"]) not in repr(record)


def test_audit_failure_means_no_token() -> None:
    signer = LocalSigner()
    with pytest.raises(DependencyFailure):
        build(FakeAudit(fail=True), signer=signer).handle(request(GOOD))


def test_kms_failure_is_temporarily_unavailable_and_audited() -> None:
    class BrokenSigner(LocalSigner):
        def sign(self, signing_input: bytes) -> bytes:
            raise DependencyFailure("KMS throttled")

    audit = FakeAudit()
    with pytest.raises(TemporarilyUnavailable):
        build(audit, signer=BrokenSigner()).handle(request(GOOD))
    assert audit.records[0].decision == "deny" and audit.records[0].reason.startswith("dependency_failure")


def test_unknown_client_still_compares_a_hash() -> None:
    with (
        mock.patch(
            "agent_auth.oauth.client_auth.secret_matches", wraps=client_secrets.secret_matches
        ) as compare,
        pytest.raises(InvalidClient),
    ):
        build().handle(request("grant_type=client_credentials&client_id=ghost&client_secret=x"))
    compare.assert_called_once()


def test_malformed_client_id_is_not_looked_up() -> None:
    clients = FakeClients(AGENT)
    with pytest.raises(InvalidClient):
        build(clients=clients).handle(
            request("grant_type=client_credentials&client_id=..%2F..&client_secret=x")
        )
    assert clients.reads == []


def test_basic_credentials_are_form_decoded() -> None:
    agent = {
        **AGENT,
        "client_id": "bot",
        "auth_method": "client_secret_basic",
        "secret_hash": client_secrets.hash_secret("a:b+c"),
    }
    header = "Basic " + base64.b64encode(b"bot:a%3Ab%2Bc").decode()
    outcome = build(clients=FakeClients(agent)).handle(
        request("grant_type=client_credentials", authorization=header)
    )
    assert outcome.response["token_type"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()]
)
def test_malformed_basic_header_is_invalid_client_with_challenge(header: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        build().handle(request("grant_type=client_credentials", authorization=header))
    assert "WWW-Authenticate" in caught.value.headers()


def test_repeated_authorization_header_is_refused() -> None:
    req = request("grant_type=client_credentials", authorization="Basic x")
    req = Request(**{**req.__dict__, "repeated_headers": frozenset({"authorization"})})
    with pytest.raises(InvalidRequest):
        build().handle(req)


def test_secret_is_256_bits_and_stored_as_sha256() -> None:
    secret = client_secrets.generate_secret()
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert len(client_secrets.hash_secret(secret)) == 64
    assert client_secrets.secret_matches(secret, client_secrets.hash_secret(secret))
    assert not client_secrets.secret_matches(secret, None)
