"""The revocation lookup reaches exchanged tokens through what they carry: the subject's refresh family,
their ancestors' ids, and the agent whose consent began the chain (`origin`), which `act` does not name."""

from __future__ import annotations

from typing import Any

from agent_auth.adapters.dynamodb import DynamoTransaction
from agent_auth.adapters.revocations import RevocationTable
from agent_auth.wiring import revocation_lookup
from tests.conftest import Deployment

NOW = 1_900_000_000


def exchanged(**claims: Any) -> dict[str, Any]:
    """An exchanged token of billing-agent for a user, begun by support-bot's delegated token."""
    return {
        "iss": "https://auth.example.com",
        "sub": "alice@example.com",
        "client_id": "billing-agent",
        "jti": "tok-2",
        "iat": NOW,
        "exp": NOW + 300,
        "act": {"sub": "billing-agent"},
        "origin": {"iss": "https://auth.example.com", "client_id": "support-bot"},
        **claims,
    }


def revoke(deployment: Deployment, *, token: str | None = None, family: str | None = None) -> None:
    table = RevocationTable(deployment.clients.dynamodb, deployment.settings.require("revocations_table"))
    write = (
        table.revoke_token(token, "support-bot", NOW + 300, NOW)
        if token
        else table.revoke_family(str(family), "support-bot", NOW + 300, NOW)
    )
    assert DynamoTransaction(deployment.clients.dynamodb).commit([write])


def test_an_exchanged_token_is_live_until_something_behind_it_is_revoked(deployment: Deployment) -> None:
    lookup = revocation_lookup(deployment.settings, deployment.clients)
    assert lookup.status(exchanged(ancestors=["tok-1"], token_family="fam-1"), NOW).revoked is None


def test_revoking_the_subject_token_revokes_the_token_exchanged_from_it(deployment: Deployment) -> None:
    revoke(deployment, token="tok-1")
    lookup = revocation_lookup(deployment.settings, deployment.clients)
    assert lookup.status(exchanged(ancestors=["tok-1"]), NOW).revoked == "token_revoked"


def test_revoking_the_subjects_family_revokes_the_token_exchanged_from_it(deployment: Deployment) -> None:
    revoke(deployment, family="fam-1")
    lookup = revocation_lookup(deployment.settings, deployment.clients)
    assert lookup.status(exchanged(token_family="fam-1"), NOW).revoked == "family_revoked"


def test_disabling_the_agent_that_began_the_chain_revokes_the_exchanged_token(deployment: Deployment) -> None:
    from agent_auth.operations.agents import disable_agent

    disable_agent(deployment.target, "support-bot")
    lookup = revocation_lookup(deployment.settings, deployment.clients)
    assert lookup.status(exchanged(), NOW + 10).revoked in ("agent_disabled", "revoked_by_disable")
