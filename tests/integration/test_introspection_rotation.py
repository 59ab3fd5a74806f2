"""Introspection (RFC 7662) across a signing-key rotation, through the lifecycle handler against moto: the
lifecycle function reads the key set the operator wrote (no redeploy, no cold start), so a token signed by
the new key is active (tests/unit/test_token_validator_rotation.py has the refresh's limits)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import OffsetClock
from agent_auth.config import INITIAL_KEY_ALIAS
from agent_auth.oauth.jose import b64url_decode, kid_for_key
from agent_auth.operations.keys import KeyDeployment, KeyTarget, rotate_keys
from agent_auth.signing_keys import DEFAULT_OVERLAP, KEY_CACHE_SECONDS
from agent_auth.web.function import Container
from agent_auth.wiring import key_operator_target
from tests.conftest import Deployment, make_deployment
from tests.integration.lifecycle_support import access_token, introspect, lifecycle_policy
from tests.support import ClientKey, recording_aws_calls

PREFIX = "alias/agent-auth/test/signing"


@pytest.fixture
def d(
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_keys: dict[str, ClientKey],
    clock: OffsetClock,
) -> Deployment:
    """A deployment whose keys rotate (its key behind <prefix>/initial), with the lifecycle policy."""
    deployment = make_deployment(aws, monkeypatch, tmp_path, client_keys)
    aws.kms.create_alias(
        AliasName=f"{PREFIX}/{INITIAL_KEY_ALIAS}", TargetKeyId=deployment.settings.signing_key_arn
    )
    monkeypatch.setenv("SIGNING_KEY_ALIAS_PREFIX", PREFIX)
    Container.reset_all()
    lifecycle_policy(deployment, tmp_path)
    return deployment


def key_target(d: Deployment, clock: OffsetClock) -> KeyTarget:
    s = d.settings
    return key_operator_target(
        name="test",
        clients=d.clients,
        agents_table=s.agents_table,
        audit_table=s.audit_table,
        operator="ops@example.com",
        clock=clock,
        deployment=KeyDeployment(PREFIX, s.signing_alg, s.token_lifetime, s.signing_key_arn),
    )


def kid(token: str) -> str:
    return str(json.loads(b64url_decode(token.split(".", maxsplit=1)[0]))["kid"])


def test_a_token_signed_by_the_rotated_key_introspects_active(d: Deployment, clock: OffsetClock) -> None:
    initial = kid_for_key(d.settings.signing_key_arn)
    # Given the lifecycle function has verified a token of the initial key (and so read the keys)
    old = access_token(d, scope="crm.contacts.read")
    assert kid(old) == initial and introspect(d, old)[1]["active"] is True

    # When the operator rotates, and the overlap passes
    rotation = rotate_keys(key_target(d, clock))
    clock.offset += KEY_CACHE_SECONDS
    assert introspect(d, old)[1]["active"] is True  # the old key is still published
    clock.offset += DEFAULT_OVERLAP
    new = access_token(d, scope="crm.contacts.read")
    assert kid(new) == rotation.new.kid

    # Then the new key's token is active at once (no cold start), read from the key set item and KMS
    with recording_aws_calls() as log:
        status, body = introspect(d, new)
    assert status == 200 and body["active"] is True and body["jti"]
    assert log.calls["kms:GetPublicKey"] == 1  # the new key's public half, once; the initial one is kept
    assert log.calls["dynamodb:GetItem"] >= 2  # the agent, and the key set item
    # And the next introspection costs no key read at all
    with recording_aws_calls() as log:
        assert introspect(d, new)[1]["active"] is True
    assert log.calls == Counter({"dynamodb:GetItem": 1, "dynamodb:BatchGetItem": 1, "dynamodb:PutItem": 1})
