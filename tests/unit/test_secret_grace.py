"""A rotated secret's grace period, with in-memory ports: both secrets authenticate until it ends, a use of
the previous one is audited as such, and afterwards it is refused like any wrong secret."""

from __future__ import annotations

import argparse

import pytest

from agent_auth.cli.keys import duration
from agent_auth.clock import FixedClock
from agent_auth.errors import InvalidClient, InvalidScope
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

NOW = 1_800_000_000
OLD, NEW = client_secrets.generate_secret(), client_secrets.generate_secret()
AGENT = {
    "client_id": "bot",
    "auth_method": "client_secret_post",
    "secret_hash": client_secrets.hash_secret(NEW),
    "previous_secret_hash": client_secrets.hash_secret(OLD),
    "previous_secret_expires_at": NOW + 3600,
    "scopes": {"crm.read": "crm"},
    "audiences": {"crm": "https://crm.example.com"},
}


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.audit = FakeAudit()
        verifier = AssertionVerifier(
            audiences=("https://auth.example.com",), replay=FakeReplay(), keys=NoKeys(), clock=self.clock
        )
        issuer = TokenIssuer(issuer="https://auth.example.com", signer=LocalSigner(), lifetime=300)
        self.endpoint = ClientEndpoint(
            authenticator=ClientAuthenticator(FakeClients(AGENT), verifier, clock=self.clock),
            operation=TokenOperation(GrantTypeRegistry(ClientCredentialsGrant(issuer))),
            audit=self.audit,
            clock=self.clock,
        )

    def token(self, secret: str, scope: str = "crm.read") -> int:
        body = f"grant_type=client_credentials&client_id=bot&client_secret={secret}&scope={scope}"
        request = Request(
            method="POST",
            path="/token",
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=body.encode(),
            source_ip="198.51.100.1",
            http_request_id="req-1",
        )
        try:
            return self.endpoint.handle(request).status
        except InvalidClient as error:
            return error.status


@pytest.fixture
def world() -> World:
    return World()


def test_during_the_grace_both_secrets_authenticate(world: World) -> None:
    assert world.token(NEW) == 200
    assert world.token(OLD) == 200
    # Then only the use of the previous secret says so in its audit record
    current, previous = world.audit.records
    assert "previous_secret" not in current.details
    assert previous.details["previous_secret"] is True and previous.decision == "allow"


def test_a_refusal_after_the_previous_secret_is_marked_too(world: World) -> None:
    # Given the previous secret and a scope the agent does not have / Then the denial names the secret used
    with pytest.raises(InvalidScope):
        world.token(OLD, scope="billing.read")
    [record] = world.audit.records
    assert record.decision == "deny" and record.details["previous_secret"] is True


def test_after_the_grace_the_previous_secret_is_refused(world: World) -> None:
    world.clock.advance(3600)
    assert world.token(OLD) == 401
    assert world.token(NEW) == 200
    refused, _ = world.audit.records
    assert refused.reason == "previous_secret_expired"


def test_a_wrong_secret_is_still_wrong(world: World) -> None:
    assert world.token(client_secrets.generate_secret()) == 401
    assert world.audit.records[0].reason == "wrong_secret"


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "-1", "1.5h", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_an_unknown_client_pays_for_the_previous_secret_comparison_too(world: World) -> None:
    from unittest import mock

    # When a client that does not exist presents a secret
    with mock.patch(
        "agent_auth.oauth.client_auth.previous_secret_matches", wraps=client_secrets.previous_secret_matches
    ) as compare:
        body = "grant_type=client_credentials&client_id=ghost&client_secret=x"
        request = Request(
            method="POST",
            path="/token",
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=body.encode(),
            source_ip="198.51.100.1",
            http_request_id="req-2",
        )
        with pytest.raises(InvalidClient):
            world.endpoint.handle(request)
    # Then the grace comparison ran as for a known agent (performance target 8: equal cost)
    compare.assert_called_once()
