"""Introspection (RFC 7662) and revocation (RFC 7009) through the lifecycle handler, against moto."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from agent_auth.adapters.dynamodb import from_item
from agent_auth.clock import OffsetClock
from agent_auth.handlers import lifecycle
from agent_auth.operations import revoke_grant
from tests.conftest import ISSUER, Deployment
from tests.integration.jit_support import approve as approve_link
from tests.integration.jit_support import ask, deliver, link_of, poll
from tests.integration.lifecycle_support import (
    BILLING,
    CRM,
    access_token,
    call,
    claims_of,
    delegated,
    introspect,
    lifecycle_policy,
    refresh,
    revoke,
)
from tests.support import basic, form, recording_aws_calls

INACTIVE = {"active": False}


@pytest.fixture
def d(deployment: Deployment, tmp_path: Path) -> Deployment:
    lifecycle_policy(deployment, tmp_path)
    return deployment


def test_an_agent_introspects_its_own_token_and_sees_its_claims(d: Deployment) -> None:
    # Given a token support-bot holds
    token = access_token(d, scope="crm.contacts.read")

    # When support-bot introspects it
    status, body, headers = call(
        "introspect", form(token=token), Authorization=basic("support-bot", d.secrets["support-bot"])
    )

    # Then it is active, with every claim of the token (RFC 7662 §2.2), and never cached
    claims = claims_of(token)
    assert status == 200
    assert body == {"active": True, **claims, "token_type": "Bearer"}
    assert body["client_id"] == "support-bot" and body["aud"] == CRM and body["iss"] == ISSUER
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"


def test_a_resource_server_introspects_tokens_for_its_audience_only(d: Deployment) -> None:
    # Given billing-agent is the CRM's resource server (and not billing's)
    crm = access_token(d, scope="crm.contacts.read")

    # When billing-agent introspects support-bot's CRM token, it is active
    status, body = introspect(d, crm, agent="billing-agent")
    assert status == 200 and body["active"] is True and body["client_id"] == "support-bot"


def test_a_token_neither_own_nor_for_a_served_audience_is_inactive_and_nothing_else(
    d: Deployment, tmp_path: Path
) -> None:
    # Given billing-agent serves no audience any more, and holds nothing of support-bot's
    lifecycle_policy(d, tmp_path, {"audiences.crm.resource_servers": []})
    crm = access_token(d, scope="crm.contacts.read")

    # When billing-agent introspects support-bot's token
    status, body = introspect(d, crm, agent="billing-agent")

    # Then the answer is exactly {"active": false} (Keycloak CVE-2026-37979 is what happens otherwise)
    assert (status, body) == (200, INACTIVE)


def test_the_resource_server_of_one_audience_learns_nothing_of_another(d: Deployment) -> None:
    # Given support-bot's own billing-free token for the CRM, and billing-agent's own token for billing
    billing = access_token(d, "billing-agent", scope="billing.invoices.read", resource=BILLING)

    # When support-bot (which serves nothing) introspects billing-agent's token
    assert introspect(d, billing) == (200, INACTIVE)
    # And billing-agent introspects its own: active
    assert introspect(d, billing, agent="billing-agent")[1]["active"] is True


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
        "rt_AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43,
    ],
)
def test_unknown_malformed_and_unsigned_tokens_are_inactive(d: Deployment, token: str) -> None:
    assert introspect(d, token) == (200, INACTIVE)


def test_an_expired_token_is_inactive(d: Deployment, clock: OffsetClock) -> None:
    token = access_token(d, scope="crm.contacts.read")
    assert introspect(d, token)[1]["active"] is True
    clock.offset += d.settings.token_lifetime + 61  # past exp and the skew
    assert introspect(d, token) == (200, INACTIVE)


def test_a_token_is_inactive_from_its_exp_on_not_only_after_the_skew(
    d: Deployment, clock: OffsetClock
) -> None:
    # The validator's 60 s of skew is for verifying a token's signature window, not for calling an
    # expired token active (RFC 7662 §2.2: a token past its exp is not active)
    token = access_token(d, scope="crm.contacts.read")
    clock.offset += d.settings.token_lifetime + 1
    assert introspect(d, token) == (200, INACTIVE)


def test_introspection_needs_an_authenticated_agent(d: Deployment) -> None:
    token = access_token(d, scope="crm.contacts.read")
    # No credentials, a wrong secret, and a public agent naming itself: 401 invalid_client
    assert call("introspect", form(token=token))[:2] == (
        401,
        {"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    wrong = basic("support-bot", "x" * 43)
    assert call("introspect", form(token=token), Authorization=wrong)[0] == 401
    assert call("introspect", form(token=token, client_id="public-app"))[0] == 401
    # And without a token: invalid_request (RFC 7662 §2.1)
    status, body, _ = call("introspect", form(), Authorization=basic("support-bot", d.secrets["support-bot"]))
    assert (status, body["error"]) == (400, "invalid_request")


def test_every_introspection_is_audited_without_the_token(d: Deployment) -> None:
    token = access_token(d, scope="crm.contacts.read")
    introspect(d, token, agent="billing-agent")
    [record] = [r for r in d.audit_records() if r["action"] == "token.introspect"]
    assert record["client_id"] == "billing-agent" and record["decision"] == "allow"
    assert record["token_id"] == claims_of(token)["jti"]
    assert token not in str(record)


def test_introspection_reads_every_revocation_in_one_batch(d: Deployment) -> None:
    # Given a warm function (the public keys fetched once)
    token = access_token(d, scope="crm.contacts.read")
    introspect(d, token)

    # When it introspects a token
    with recording_aws_calls() as log:
        status, body = introspect(d, token)

    # Then it costs the agent's read, one BatchGetItem for every revocation, and the audit write
    assert status == 200 and body["active"] is True
    assert log.calls == Counter({"dynamodb:GetItem": 1, "dynamodb:BatchGetItem": 1, "dynamodb:PutItem": 1})


# --- Revocation ------------------------------------------------------------------------------------------


def test_a_revoked_access_token_is_inactive_at_once(d: Deployment) -> None:
    token = access_token(d, scope="crm.contacts.read")

    status, body = revoke(d, token)

    assert (status, body) == (200, {})
    assert introspect(d, token) == (200, INACTIVE)
    assert introspect(d, token, agent="billing-agent") == (200, INACTIVE)


def test_a_revocation_is_a_record_kept_until_the_token_would_have_expired(d: Deployment) -> None:
    token = access_token(d, scope="crm.contacts.read")
    revoke(d, token)
    [item] = [from_item(i) for i in d.scan(d.settings.revocations_table)]
    assert item["pk"] == f"jti#{claims_of(token)['jti']}"
    assert int(item["expires_at"]) == claims_of(token)["exp"]  # the TTL: the token's remaining life


def test_revoking_an_unknown_or_garbage_token_is_200(d: Deployment) -> None:
    for token in ("not-a-token", "rt_AAAAAAAAAAAAAAAAAAAAAA." + "A" * 43):
        assert revoke(d, token) == (200, {})
    assert d.scan(d.settings.revocations_table) == []


def test_an_agent_cannot_revoke_another_agents_token(d: Deployment) -> None:
    # Given support-bot's token
    token = access_token(d, scope="crm.contacts.read")

    # When billing-agent (even as the CRM's resource server) tries to revoke it
    status, body = revoke(d, token, agent="billing-agent")

    # Then it is refused (RFC 7009 §2.1) and the token stays active
    assert (status, body["error"]) == (400, "unauthorized_client")
    assert introspect(d, token)[1]["active"] is True


def test_revocation_needs_an_authenticated_agent(d: Deployment) -> None:
    token = access_token(d, scope="crm.contacts.read")
    assert call("revoke", form(token=token), Authorization=None)[0] == 401
    assert introspect(d, token)[1]["active"] is True


def test_revoking_a_refresh_token_revokes_its_family_and_the_access_tokens_from_it(d: Deployment) -> None:
    # Given a delegated refresh token, and an access token refreshed from it
    first = delegated(d)
    status, refreshed = refresh(d, first)
    assert status == 200, refreshed
    access, current = refreshed["access_token"], refreshed["refresh_token"]
    assert claims_of(access)["token_family"] == current.split(".")[0][3:]
    assert introspect(d, access, agent="billing-agent")[1]["active"] is True

    # When support-bot revokes the refresh token
    assert revoke(d, current, token_type_hint="refresh_token") == (200, {})

    # Then the family is ended and so is every access token issued from it
    assert refresh(d, current)[1]["error"] == "invalid_grant"
    assert introspect(d, access) == (200, INACTIVE)
    assert introspect(d, access, agent="billing-agent") == (200, INACTIVE)


def test_a_reused_refresh_token_makes_the_access_tokens_of_its_family_inactive(d: Deployment) -> None:
    # Given an access token refreshed from a family, whose first refresh token is now retired
    first = delegated(d)
    status, refreshed = refresh(d, first)
    assert status == 200, refreshed
    access = refreshed["access_token"]
    assert introspect(d, access)[1]["active"] is True

    # When the retired token comes back (it leaked, RFC 9700 §4.14.2)
    assert refresh(d, first)[1]["error"] == "invalid_grant"

    # Then the family's access tokens stop too, not only its refresh tokens
    assert introspect(d, access) == (200, INACTIVE)
    assert refresh(d, refreshed["refresh_token"])[1]["error"] == "invalid_grant"


def test_a_refresh_token_of_another_agent_is_refused(d: Deployment) -> None:
    theirs = delegated(d, agent="support-bot")
    status, body = revoke(d, theirs, agent="billing-agent")
    assert (status, body["error"]) == (400, "unauthorized_client")
    assert refresh(d, theirs)[0] == 200


# --- JIT grants ------------------------------------------------------------------------------------------


def approved_token(d: Deployment) -> tuple[str, str]:
    """support-bot asks for crm.contacts.write, lead@example.com approves, the poll returns a token."""
    _, asked = ask(d)
    mail = next(m for m in deliver(d) if "lead@example.com" in m["to"])
    assert approve_link(link_of(mail)).status == 200
    status, body = poll(d, asked["request_id"])
    assert status == 200, body
    return asked["request_id"], body["access_token"]


def test_introspection_shows_the_jit_grant_behind_a_token(d: Deployment) -> None:
    request_id, token = approved_token(d)
    body = introspect(d, token)[1]
    assert body["active"] is True and body["access_request"] == request_id
    [grant] = body["jit_grants"]
    assert grant["grant_id"] == request_id and grant["approved_by"] == "lead@example.com"
    assert grant["scope"] == "crm.contacts.write" and grant["ends_at"] >= body["exp"]


def test_a_grant_revoked_by_an_operator_makes_its_tokens_inactive(d: Deployment) -> None:
    request_id, token = approved_token(d)
    revoke_grant(d.target, request_id)
    assert introspect(d, token) == (200, INACTIVE)


def test_the_function_is_served_at_both_paths_and_refuses_get(d: Deployment) -> None:
    from tests.support import load_event, with_body

    event = with_body(load_event("introspect.json"), "")
    event["httpMethod"] = "GET"
    result = lifecycle.lambda_handler(event, None)
    assert result["statusCode"] == 405 and result["headers"]["Allow"] == "POST"


def test_a_token_acting_through_a_disabled_agent_is_inactive(d: Deployment) -> None:
    from agent_auth.adapters.kms import KmsSigner
    from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
    from agent_auth.operations.agents import disable_agent

    # Given a token billing-agent holds for alice, obtained through support-bot (an `act` chain)
    signer = KmsSigner(d.clients.kms, d.settings.signing_key_arn, d.settings.signing_alg)
    issuance = Issuance(
        subject="alice@example.com",
        client_id="billing-agent",
        audience=CRM,
        scopes=("crm.contacts.read",),
        act={"sub": "billing-agent", "act": {"sub": "support-bot"}},
    )
    token = TokenIssuer(issuer=ISSUER, signer=signer, lifetime=300).issue(issuance, int(time.time())).token
    body = introspect(d, token, agent="billing-agent")[1]
    assert body["active"] is True and body["act"] == {"sub": "billing-agent", "act": {"sub": "support-bot"}}

    # When support-bot, earlier in the chain, is disabled
    disable_agent(d.target, "support-bot")

    # Then the derived token is inactive too
    assert introspect(d, token, agent="billing-agent") == (200, INACTIVE)
