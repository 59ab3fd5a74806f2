"""`agent-auth consents` and `consents revoke` against a deployed stack (moto), and what a revocation
does to the refresh tokens the consent covered: the token handler refuses them (RFC 6749 §6)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.delegation_tables import RefreshTable
from agent_auth.cli.main import main
from agent_auth.handlers import token
from agent_auth.oauth.tokens import opaque
from agent_auth.records import Consent, RefreshFamily
from tests.conftest import Deployment
from tests.integration.test_operator_targets import create_stack
from tests.support import form, post_event

STACK = ["--stack", "agent-auth", "--region", "us-east-1"]
ALICE = "alice@example.com"
CRM = "https://crm.example.com"


def remembered(deployment: Deployment, user: str = ALICE, agent: str = "public-app") -> str:
    """A consent as /authorize remembers it, and a refresh family it covers; returns the refresh token."""
    now = int(time.time())
    consent = Consent(user, agent, CRM, ("crm.contacts.read", "offline_access"), now)
    family_id = opaque.new_family_id()
    refresh_token = opaque.new_refresh_token(family_id)
    family = RefreshFamily(
        family_id=family_id,
        client_id=agent,
        user=user,
        audience=CRM,
        scopes=("crm.contacts.read", "offline_access"),
        current_hash=opaque.digest(refresh_token),
        generation=0,
        created_at=now,
        expires_at=now + 86400,
    )
    refresh = RefreshTable(deployment.clients.dynamodb, deployment.settings.refresh_table)
    target = deployment.target
    assert target.transaction.commit([target.consents.put_consent(consent), refresh.put_family(family)])
    return refresh_token


def refresh(refresh_token: str) -> tuple[int, dict[str, Any]]:
    body = form(grant_type="refresh_token", refresh_token=refresh_token, client_id="public-app")
    response = token.lambda_handler(post_event(body), None)
    return int(response["statusCode"]), json.loads(response["body"])


def printed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_revoked_consent_ends_the_refresh_tokens_it_covered(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given alice's remembered consent for public-app, and a refresh token that works
    create_stack(aws, deployment)
    status, body = refresh(remembered(deployment))
    assert status == 200, body
    current = body["refresh_token"]

    # When the operator lists her consents, then withdraws the one for public-app
    assert main(["consents", *STACK, "--user", ALICE, "--json"]) == 0
    [listed] = printed(capsys)
    assert (listed["client_id"], listed["status"], listed["audience"]) == ("public-app", "active", CRM)

    assert main(["consents", "revoke", "--user", ALICE, "--agent", "public-app", *STACK]) == 0
    [revoked] = printed(capsys)
    assert (revoked["user"], revoked["client_id"]) == (ALICE, "public-app")

    # Then the latest refresh token is refused, and the listing says revoked
    status, body = refresh(current)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert main(["consents", *STACK, "--json"]) == 0
    assert [r["status"] for r in printed(capsys)] == ["revoked"]

    # And exactly one audit record names the operator, the user and the agent
    records = [r for r in deployment.audit_records() if r["action"] == "consent.revoke"]
    assert len(records) == 1
    [record] = records
    assert record["operator"].startswith(("arn:aws:sts::", "arn:aws:iam::"))
    assert (record["user"], record["client_id"], record["decision"]) == (ALICE, "public-app", "allow")
    refused = [r for r in deployment.audit_records() if r.get("reason") == "consent_withdrawn"]
    assert len(refused) == 1 and refused[0]["decision"] == "deny"


def test_the_table_lists_every_users_consents(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(aws, deployment)
    remembered(deployment)
    remembered(deployment, user="bob@example.com")
    assert main(["consents", *STACK]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["USER", "AGENT", "AUDIENCE", "SCOPE", "GRANTED", "STATUS"]
    assert [row.split()[:2] for row in rows] == [[ALICE, "public-app"], ["bob@example.com", "public-app"]]
    assert all(row.split()[-1] == "active" for row in rows)


def test_no_consents_prints_none(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(aws, deployment)
    assert main(["consents", *STACK, "--user", "nobody@example.com"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(none)"


def test_revoking_an_unknown_or_revoked_consent_is_a_clear_error(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(aws, deployment)
    remembered(deployment)
    before = len(deployment.audit_records())

    assert main(["consents", "revoke", "--user", "carol@example.com", "--agent", "public-app", *STACK]) == 1
    err = capsys.readouterr().err
    assert "'carol@example.com' has no active consent for 'public-app' in stack agent-auth" in err
    assert "Traceback" not in err

    assert main(["consents", "revoke", "--user", ALICE, "--agent", "public-app", *STACK]) == 0
    assert main(["consents", "revoke", "--user", ALICE, "--agent", "public-app", *STACK]) == 1
    assert "no active consent" in capsys.readouterr().err
    assert len(deployment.audit_records()) == before + 1, "one record, for the one revocation made"


def test_listing_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consents"]) == 2
    assert "one of --dev or --stack NAME is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["consents", "revoke", "--user", ALICE, "--agent", "public-app"])
    assert exited.value.code == 2
