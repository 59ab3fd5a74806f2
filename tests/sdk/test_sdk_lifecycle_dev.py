"""The SDK against the lifecycle and exchange endpoints of `agent-auth dev`: `exchange()` turns alice's
delegated token into one for another audience (RFC 8693), `introspect()` returns an active token's claims
(RFC 7662), `revoke()` revokes (RFC 7009), and the Verifier with `introspection=` sees a revoked token or a
disabled agent as inactive at once while offline verification still passes; after a signing-key rotation
both exchange and introspection accept tokens of the new key without a restart."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_auth.signing_keys import KEY_CACHE_SECONDS
from agent_auth_sdk import ACCESS_TOKEN_TYPE, AgentAuth, InvalidToken, OAuthError, Token, Verifier
from tests.e2e.conftest import DevServer, start_dev_server, stop_dev_server
from tests.e2e.sign_in import ALICE, Callback, delegate
from tests.e2e.test_jit_flow import advance
from tests.e2e.test_token_exchange_dev import (
    BILLING,
    CRM,
    ID_TOKEN,
    MAIL,
    dev_provider_id_token,
    exchange_policy,
    yaml_safe,
)
from tests.support import rsa_key, write_policy


def lifecycle_policy() -> dict[str, Any]:
    document = exchange_policy()
    # billing-agent is the resource server of the CRM and of billing: it may introspect their tokens
    document["audiences"]["crm"]["resource_servers"] = ["billing-agent"]
    document["audiences"]["billing"]["resource_servers"] = ["billing-agent"]
    # An agent of its own for the kill switch, so no other test's agent is disabled
    document["agents"]["doomed-bot"] = {
        "owner": "owner@example.com",
        "auth": "client_secret_basic",
        "roles": ["crm-reader"],
    }
    return document


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(
        tmp_path_factory.mktemp("sdk-lifecycle"), rsa_key(), document=lifecycle_policy()
    )
    yield server
    stop_dev_server(server.process)


@pytest.fixture
def callback() -> Iterator[Callback]:
    listener = Callback()
    yield listener
    listener.server.shutdown()


def agent(dev: DevServer, name: str) -> AgentAuth:
    method = "client_secret_post" if name == "billing-agent" else "client_secret_basic"
    return AgentAuth(
        dev.issuer, name, client_secret=dev.credentials[name]["client_secret"], auth_method=method
    )


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def claims(token: str) -> dict[str, Any]:
    return _segment(token, 1)


def kid(token: str) -> str:
    return str(_segment(token, 0)["kid"])


def trust_the_dev_provider(server: DevServer, workdir: Path) -> None:
    """The development OpenID provider as a trusted issuer (its ID tokens are exchanged without a browser)."""
    provider = json.loads((workdir / ".agent-auth" / "dev.json").read_text())["settings"]
    document = yaml_safe(server.policy_file)
    document["trusted_issuers"] = [
        {
            "issuer": provider["UPSTREAM_ISSUER"],
            "jwks_uri": provider["UPSTREAM_ISSUER"] + "/jwks.json",
            "audience": provider["UPSTREAM_CLIENT_ID"],
            "user_claim": "email",
            "algorithms": ["RS256"],
        }
    ]
    applied = server.cli("apply", str(write_policy(workdir / "trusting.yaml", document)), "--dev")
    assert applied.returncode == 0, applied.stderr


def exchange_id_token(server: DevServer) -> Token:
    """A new ID token of alice's, exchanged by agent-a for billing: a token we sign with the current key."""
    return agent(server, "agent-a").exchange(
        dev_provider_id_token(server), BILLING, "billing.invoices.read", subject_token_type=ID_TOKEN
    )


def test_introspect_returns_the_claims_of_an_active_token(dev: DevServer) -> None:
    # Given support-bot's token for the CRM
    token = agent(dev, "support-bot").token("crm.contacts.read", CRM).access_token
    # When the CRM's resource server introspects it with the SDK
    body = agent(dev, "billing-agent").introspect(token)
    # Then it is active, with every claim of the token (RFC 7662 §2.2)
    assert body == {"active": True, **claims(token), "token_type": "Bearer"}
    assert body["client_id"] == "support-bot" and body["aud"] == CRM and body["iss"] == dev.issuer


def test_a_token_revoked_through_the_sdk_is_inactive_at_once(dev: DevServer) -> None:
    # Given support-bot's token, which the CRM verifies offline and through introspection
    support_bot = agent(dev, "support-bot")
    token = support_bot.token("crm.contacts.read", CRM).access_token
    verifier = Verifier(dev.issuer, CRM, introspection=agent(dev, "billing-agent"))
    assert verifier.verify(token, introspect=True).agent == "support-bot"
    # When support-bot revokes it (POST /revoke)
    support_bot.revoke(token)
    # Then offline verification still passes (the signature and expiry stand), introspection refuses it
    assert verifier.verify(token).agent == "support-bot"
    with pytest.raises(InvalidToken, match="not active"):
        verifier.verify(token, introspect=True)
    # And the agent's next token is a new one, active
    fresh = support_bot.token("crm.contacts.read", CRM).access_token
    assert fresh != token and verifier.verify(fresh, introspect=True)
    # And revoking again, or an unknown token, is not an error (RFC 7009 §2.2)
    support_bot.revoke(token)
    support_bot.revoke("not-a-token")


def test_a_disabled_agents_token_is_inactive_at_once(dev: DevServer) -> None:
    # Given doomed-bot's token, active
    token = agent(dev, "doomed-bot").token("crm.contacts.read", CRM).access_token
    verifier = Verifier(dev.issuer, CRM, introspection=agent(dev, "billing-agent"))
    assert verifier.verify(token, introspect=True).agent == "doomed-bot"
    # When the operator disables the agent
    disabled = dev.cli("agents", "disable", "doomed-bot", "--dev")
    assert disabled.returncode == 0, disabled.stderr
    # Then introspection refuses its token at once, offline verification cannot know
    with pytest.raises(InvalidToken, match="not active"):
        verifier.verify(token, introspect=True)
    assert verifier.verify(token).agent == "doomed-bot"
    assert agent(dev, "billing-agent").introspect(token) == {"active": False}


@pytest.mark.browser
def test_exchange_turns_a_users_delegated_token_into_one_for_another_audience(
    dev: DevServer, callback: Callback
) -> None:
    # Given alice's delegated token for the CRM, issued to public-app after she consented
    user_token = delegate(dev, callback, "crm.contacts.read", resource=CRM).token["access_token"]
    subject = claims(user_token)
    assert subject["sub"] == ALICE and subject["aud"] == CRM and "act" not in subject

    # When agent-a exchanges it with the SDK for billing, and agent-b exchanges that for mail
    first = agent(dev, "agent-a").exchange(user_token, BILLING, "billing.invoices.read")
    second = agent(dev, "agent-b").exchange(first.access_token, MAIL)

    # Then each is an access token for the other audience, for alice, with the act chain (RFC 8693 §4.1)
    assert first.issued_token_type == second.issued_token_type == ACCESS_TOKEN_TYPE
    on_billing = Verifier(dev.issuer, BILLING, scopes=["billing.invoices.read"]).verify(first.access_token)
    assert (on_billing.user, on_billing.agent, on_billing.actors) == (ALICE, "agent-a", ("agent-a",))
    on_mail = Verifier(dev.issuer, MAIL).verify(second.access_token)
    assert (on_mail.user, on_mail.agent, on_mail.actors) == (ALICE, "agent-b", ("agent-b", "agent-a"))
    # And the scope is narrower: only what was asked (or the audience allows), never the subject's own
    assert first.scopes == ("billing.invoices.read",) and on_mail.scopes == frozenset({"mail.read"})
    assert "crm.contacts.read" not in on_billing.scopes | on_mail.scopes
    # And no token outlives the one it was exchanged for
    assert on_mail.expires_at <= on_billing.expires_at <= subject["exp"]

    # And billing's resource server sees the exchanged token as active, with its act chain
    body = agent(dev, "billing-agent").introspect(first.access_token)
    assert body["active"] is True and body["sub"] == ALICE and body["act"] == {"sub": "agent-a"}
    # And a subject token agent-b may not exchange is an OAuth error through the SDK
    with pytest.raises(OAuthError) as refused:
        agent(dev, "agent-b").exchange(user_token, MAIL)
    assert refused.value.error == "invalid_request"


def test_exchange_and_introspection_follow_a_key_rotation(tmp_path: Path) -> None:
    """Both verify our own tokens with keys read once: the token function's exchange grant from /jwks.json
    over HTTP, the lifecycle function from the key set and KMS. A rotation must reach both at once."""
    server = start_dev_server(tmp_path, rsa_key(), document=lifecycle_policy())
    try:
        trust_the_dev_provider(server, tmp_path)
        resource_server = agent(server, "billing-agent")
        # Given both functions have verified tokens of the initial key (and so read the keys)
        before = agent(server, "support-bot").token("crm.contacts.read", CRM).access_token
        assert resource_server.introspect(before)["active"] is True
        first = exchange_id_token(server)
        agent(server, "agent-b").exchange(first.access_token, MAIL)
        # When the operator rotates with the shortest overlap, and the overlap passes
        rotated = server.cli("keys", "rotate", "--dev", "--overlap", "11m", "--json")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = json.loads(rotated.stdout)["new_kid"]
        moved = 11 * 60 + KEY_CACHE_SECONDS
        advance(server, moved)
        # Then a token of the new key introspects active
        after = agent(server, "support-bot").token("crm.contacts.read", CRM)  # a new agent: no cache
        assert kid(after.access_token) == new_kid
        assert resource_server.introspect(after.access_token)["active"] is True
        # And a token of the new key is exchanged again (the grant found the new key in /jwks.json)
        again = exchange_id_token(server)
        assert kid(again.access_token) == new_kid
        onward = agent(server, "agent-b").exchange(again.access_token, MAIL)
        on_mail = Verifier(server.issuer, MAIL, clock=lambda: time.time() + moved)  # the server's time
        assert on_mail.verify(onward.access_token).actors == ("agent-b", "agent-a")
    finally:
        stop_dev_server(server.process)
