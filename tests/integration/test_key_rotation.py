"""Key and secret rotation through lambda_handler against moto: the token and well-known functions read the
key set the operator wrote (no redeploy), tokens of both keys verify throughout, and a rotated secret keeps
working for its grace period (operations/keys.py, operations/secrets.py)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import OffsetClock
from agent_auth.config import INITIAL_KEY_ALIAS
from agent_auth.handlers import token, wellknown
from agent_auth.oauth.jose import b64url_decode, kid_for_key
from agent_auth.operations import rotate_secret
from agent_auth.operations.keys import KeyDeployment, KeyTarget, list_keys, retire_keys, rotate_keys
from agent_auth.signing_keys import DEFAULT_OVERLAP, KEY_CACHE_SECONDS, KEY_SET_ITEM, MIN_OVERLAP
from agent_auth.web.function import Container
from agent_auth.wiring import key_operator_target
from tests.conftest import Deployment, make_deployment
from tests.support import ClientKey, form, load_event, post_event, recording_aws_calls

PREFIX = "alias/agent-auth/test/signing"
KEY_SET_KEY = {"pk": {"S": KEY_SET_ITEM}}
"""The key of the key set's item: what the well-known role's dynamodb:LeadingKeys condition allows."""


def make_rotating_deployment(
    aws: AwsClients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_keys: dict[str, ClientKey]
) -> Deployment:
    """A deployment as the stack deploys it by default (signingKeyRotation): its key behind
    <prefix>/initial, the functions told the prefix."""
    deployment = make_deployment(aws, monkeypatch, tmp_path, client_keys)
    aws.kms.create_alias(
        AliasName=f"{PREFIX}/{INITIAL_KEY_ALIAS}", TargetKeyId=deployment.settings.signing_key_arn
    )
    monkeypatch.setenv("SIGNING_KEY_ALIAS_PREFIX", PREFIX)
    Container.reset_all()
    return deployment


@pytest.fixture
def rotating(
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_keys: dict[str, ClientKey],
    clock: OffsetClock,
) -> Deployment:
    return make_rotating_deployment(aws, monkeypatch, tmp_path, client_keys)


@contextmanager
def dynamodb_reads() -> Iterator[list[tuple[str, str, Any]]]:
    """(operation, table, key) of each DynamoDB GetItem, Query, BatchGetItem and Scan made in the block."""
    from unittest import mock

    from botocore.client import BaseClient

    reads: list[tuple[str, str, Any]] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb" and operation in (
            "GetItem",
            "Query",
            "BatchGetItem",
            "Scan",
        ):
            key = params.get("Key", params.get("KeyConditionExpression", params.get("RequestItems")))
            reads.append((operation, str(params.get("TableName", "")), key))
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", recording):
        yield reads


def key_target(deployment: Deployment, clock: OffsetClock) -> KeyTarget:
    s = deployment.settings
    return key_operator_target(
        name="test",
        clients=deployment.clients,
        agents_table=s.agents_table,
        audit_table=s.audit_table,
        operator="ops@example.com",
        clock=clock,
        deployment=KeyDeployment(PREFIX, s.signing_alg, s.token_lifetime, s.signing_key_arn),
    )


def issue(deployment: Deployment, secret: str | None = None) -> dict[str, Any]:
    event = post_event(
        form(
            grant_type="client_credentials",
            client_id="billing-agent",
            client_secret=secret or deployment.secrets["billing-agent"],
            scope="billing.invoices.read",
        )
    )
    result = token.lambda_handler(event, None)
    return {"status": result["statusCode"], **json.loads(result["body"])}


def jwks() -> dict[str, Any]:
    result = wellknown.lambda_handler(load_event("jwks.json"), None)
    assert result["headers"]["Cache-Control"] == "public, max-age=300"
    return dict(json.loads(result["body"]))


def verifies(access_token: str) -> bool:
    try:
        jose_jwt.decode(access_token, KeySet.import_key_set(jwks()), algorithms=["RS256"])
    except (JoseError, ValueError):
        return False
    return True


def kid(access_token: str) -> str:
    return str(json.loads(b64url_decode(access_token.split(".", maxsplit=1)[0]))["kid"])


def test_tokens_of_both_keys_verify_throughout_a_rotation(rotating: Deployment, clock: OffsetClock) -> None:
    target = key_target(rotating, clock)
    initial = kid_for_key(rotating.settings.signing_key_arn)
    # Given a token signed before the rotation, and the JWKS as verifiers cached it
    old = issue(rotating)["access_token"]
    assert kid(old) == initial and [k["kid"] for k in jwks()["keys"]] == [initial]

    # When the operator rotates (no redeploy) and the functions' caches have expired
    rotation = rotate_keys(target)
    clock.offset += KEY_CACHE_SECONDS
    # Then the new key is published before it signs, with kid, alg and use
    published = {k["kid"]: k for k in jwks()["keys"]}
    assert set(published) == {initial, rotation.new.kid}
    assert all(k["alg"] == "RS256" and k["use"] == "sig" for k in published.values())
    assert kid(issue(rotating)["access_token"]) == initial

    # When the overlap has passed / Then the new key signs, and both tokens verify
    clock.offset += DEFAULT_OVERLAP
    new = issue(rotating)["access_token"]
    assert kid(new) == rotation.new.kid
    assert verifies(old) and verifies(new)

    # And the old key is published until its last token expired, then retired in KMS
    assert retire_keys(target) == []
    clock.offset += (rotation.previous.retires_at or 0) - clock.now() + 1
    assert [k["kid"] for k in jwks()["keys"]] == [rotation.new.kid]
    assert verifies(new) and not verifies(old)
    [retired] = retire_keys(target)
    assert retired.kid == initial
    state = rotating.clients.kms.describe_key(KeyId=rotating.settings.signing_key_arn)["KeyMetadata"]
    assert state["KeyState"] == "Disabled"
    assert {row["kid"]: row["state"] for row in list_keys(target)} == {
        initial: "retired",
        rotation.new.kid: "active",
    }


def test_the_rotation_is_audited_with_the_operator(rotating: Deployment, clock: OffsetClock) -> None:
    rotation = rotate_keys(key_target(rotating, clock))
    [record] = [r for r in rotating.audit_records() if r["action"] == "keys.rotate"]
    assert record["operator"] == "ops@example.com" and record["details"]["new_kid"] == rotation.new.kid
    # And the new key carries its alias under the prefix (what the IAM condition matches)
    aliases = rotating.clients.kms.list_aliases(KeyId=rotation.new.key_arn)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [rotation.new.alias]
    assert str(rotation.new.alias).startswith(PREFIX + "/")


def test_a_warm_token_still_costs_one_sign_and_one_read_per_table(rotating: Deployment) -> None:
    # Given a warm execution environment (one token issued: clients and key set read)
    assert issue(rotating)["status"] == 200
    # When the next token is issued / Then no extra read: the key set is cached
    with recording_aws_calls() as log:
        assert issue(rotating)["status"] == 200
    assert log.calls == Counter(
        {"kms:Sign": 1, "dynamodb:GetItem": 1, "dynamodb:Query": 1, "dynamodb:PutItem": 1}
    )


def test_the_key_set_is_read_once_a_minute_per_environment_not_per_token(
    rotating: Deployment, clock: OffsetClock
) -> None:
    # Performance target 1 with rotation on (the AWS default): a token costs one kms:Sign and its reads;
    # the key set adds one GetItem per KEY_CACHE_SECONDS per execution environment, whatever the traffic.
    # Given a warm execution environment
    assert issue(rotating)["status"] == 200
    agents = rotating.settings.agents_table

    def key_set_reads(reads: list[tuple[str, str, Any]]) -> int:
        return sum(1 for r in reads if r == ("GetItem", agents, KEY_SET_KEY))

    # When ten tokens are issued within the minute / Then the key set is not read again
    with recording_aws_calls() as log, dynamodb_reads() as reads:
        assert all(issue(rotating)["status"] == 200 for _ in range(10))
    assert key_set_reads(reads) == 0
    assert log.calls["kms:Sign"] == 10 and log.calls["dynamodb:GetItem"] == 10  # the agent, per token
    # When the minute has passed and ten more are issued / Then exactly one read of the key set
    clock.offset += KEY_CACHE_SECONDS
    with recording_aws_calls() as log, dynamodb_reads() as reads:
        assert all(issue(rotating)["status"] == 200 for _ in range(10))
    assert key_set_reads(reads) == 1
    assert log.calls["kms:Sign"] == 10 and log.calls["dynamodb:GetItem"] == 11


def test_introspection_verifies_tokens_of_the_rotated_key(
    rotating: Deployment, clock: OffsetClock, tmp_path: Path
) -> None:
    from tests.integration.lifecycle_support import access_token, introspect, lifecycle_policy

    # Given tokens signed before and after a rotation (the lifecycle function, like the well-known one,
    # verifies with every published key: its role needs kms:GetPublicKey on keys behind the prefix)
    lifecycle_policy(rotating, tmp_path)
    old = access_token(rotating)
    # (the shortest overlap, so the first token has not expired when the new key signs)
    rotation = rotate_keys(key_target(rotating, clock), MIN_OVERLAP)
    clock.offset += MIN_OVERLAP
    new = access_token(rotating)
    assert kid(new) == rotation.new.kid and kid(old) != kid(new)
    # When each is introspected / Then both are active, and the rotated key's public half was fetched
    with recording_aws_calls() as log:
        assert introspect(rotating, old)[1]["active"] is True
        assert introspect(rotating, new)[1]["active"] is True
    assert log.calls["kms:GetPublicKey"] == 2  # the first key and the rotated one, once each


def test_a_rotated_secret_works_during_its_grace_and_its_use_is_audited(
    rotating: Deployment, clock: OffsetClock
) -> None:
    old = rotating.secrets["billing-agent"]
    new = rotate_secret(rotating.target, "billing-agent", grace=3600)["client_secret"]
    # Then both secrets get tokens, and the use of the old one is audited as such
    assert issue(rotating, new)["status"] == 200
    assert issue(rotating, old)["status"] == 200
    newest = rotating.audit_records()[0]
    assert newest["action"] == "token.issue" and newest["details"]["previous_secret"] is True
    [rotated] = [r for r in rotating.audit_records() if r["action"] == "secret.rotate"][:1]
    assert rotated["details"]["grace_seconds"] == 3600
    # When the grace is over / Then the old secret is refused, the new one is not
    clock.offset += 3600
    assert issue(rotating, old)["status"] == 401
    assert issue(rotating, new)["status"] == 200


def test_grace_zero_revokes_every_old_secret_at_once(rotating: Deployment) -> None:
    old = rotating.secrets["billing-agent"]
    middle = rotate_secret(rotating.target, "billing-agent", grace=3600)["client_secret"]
    newest = rotate_secret(rotating.target, "billing-agent", grace=0)["client_secret"]
    assert issue(rotating, old)["status"] == 401
    assert issue(rotating, middle)["status"] == 401
    assert issue(rotating, newest)["status"] == 200


def test_kms_admin_creates_behind_the_alias_and_retires_idempotently(aws: AwsClients) -> None:
    from agent_auth.adapters.kms import KmsKeyAdmin

    admin = KmsKeyAdmin(aws.kms)
    # Given a key `keys rotate` created / Then it signs RS256 with the deployment's key spec
    arn = admin.create_signing_key(f"{PREFIX}/20261202T000000Z-abcd", "RS256")
    metadata = aws.kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert metadata["KeySpec"] == "RSA_2048" and metadata["KeyUsage"] == "SIGN_VERIFY"
    # When it is retired with deletion, twice / Then it is pending deletion, and the repeat changes nothing
    admin.retire(arn, delete=True)
    admin.retire(arn, delete=True)
    assert aws.kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_a_switch_away_from_secrets_removes_the_previous_secret_too(
    deployment: Deployment, tmp_path: Path
) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy
    from tests.support import policy_document, write_policy

    # Given a secret in its grace period
    rotate_secret(deployment.target, "billing-agent", grace=3600)
    agent = deployment.target.agents.get_client("billing-agent")
    assert agent is not None and agent.previous_secret_hash and agent.previous_secret_expires_at
    # When the policy makes the agent sign assertions instead
    document = policy_document(deployment.keys)
    document["agents"]["billing-agent"] |= {
        "auth": "private_key_jwt",
        "jwks": {"keys": [dict(deployment.keys["rsa"].jwk)]},
    }
    apply_policy(deployment.target, load_policy(str(write_policy(tmp_path / "keys.yaml", document))))
    # Then neither secret is kept: the old one cannot come back with a later switch
    agent = deployment.target.agents.get_client("billing-agent")
    assert agent is not None and agent.auth_method == "private_key_jwt"
    assert agent.secret_hash is None and agent.previous_secret_hash is None
    assert agent.previous_secret_expires_at is None


def test_an_unreadable_key_set_is_an_audited_503(
    rotating: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_auth.adapters.key_set_table import KeySetTable
    from agent_auth.errors import DependencyFailure

    def unavailable(self: KeySetTable) -> None:
        raise DependencyFailure("ProvisionedThroughputExceededException")

    # Given DynamoDB refusing the key set read
    monkeypatch.setattr(KeySetTable, "get_key_set", unavailable)
    before = len(rotating.audit_records())
    # Then no token is signed: a clean 503, with its one audit record
    response = issue(rotating)
    assert response["status"] == 503 and response["error"] == "temporarily_unavailable"
    records = rotating.audit_records()
    assert len(records) == before + 1 and records[0]["decision"] == "deny"
