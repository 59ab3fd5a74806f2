"""The lifecycle function (/introspect, /revoke): exactly the calls its code makes, and its table."""

from __future__ import annotations

import json

import pytest

from agent_auth import routes, schema
from tests.infrastructure.synthesis import Synthesized, synthesize
from tests.infrastructure.test_iam import (
    PREVIOUS_KEY,
    arn_of,
    grants,
    key_id,
    log_grants,
    rotated_keys_grant,
)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app deployed during a key rotation: tokens signed by the earlier key still introspect
    return synthesize(tmp_path_factory.mktemp("rotated"), {"previousSigningKeyArns": [PREVIOUS_KEY]})


def test_lifecycle_role_allows_exactly_what_introspection_and_revocation_call(synth: Synthesized) -> None:
    # Given the lifecycle function's role
    role = synth.role_id(synth.function_id(routes.LIFECYCLE))
    agents, revocations = arn_of(synth.table_id(schema.AGENTS)), arn_of(synth.table_id(schema.REVOCATIONS))

    # Then it may authenticate agents (read, lock, count failures, replay markers) and audit; read our
    # public key (never kms:Verify, never kms:Sign); read revocations, agents and grants in one batch;
    # record revocations; read and revoke refresh families: no more. With rotation (the default) it also
    # verifies tokens of keys behind the stack's signing alias prefix, so it may read their public key
    # (added with the default: before, a rotated key's tokens could not be introspected)
    assert grants(synth, role) == log_grants(synth, routes.LIFECYCLE) | {
        rotated_keys_grant("kms:GetPublicKey"),
        ("dynamodb:GetItem", agents),
        ("dynamodb:UpdateItem", agents),
        ("dynamodb:BatchGetItem", agents),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.THROTTLE))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REPLAY))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.AUDIT))),
        ("dynamodb:BatchGetItem", revocations),
        ("dynamodb:PutItem", revocations),
        ("dynamodb:BatchGetItem", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.REFRESH))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.REFRESH))),
        ("kms:GetPublicKey", arn_of(key_id(synth))),
    }


def test_lifecycle_role_reads_previous_keys_during_a_rotation(rotated: Synthesized) -> None:
    role = rotated.role_id(rotated.function_id(routes.LIFECYCLE))
    assert ("kms:GetPublicKey", json.dumps(PREVIOUS_KEY)) in grants(rotated, role)


def test_revocations_expire_with_the_tokens_they_name(synth: Synthesized) -> None:
    # Given the revocations table: keyed by pk, TTL on the revoked token's own end
    props = synth.props(synth.table_id(schema.REVOCATIONS))
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # And the stack names it for `--stack NAME`, and the lifecycle function finds it in its environment
    assert schema.REVOCATIONS.output_key in synth.template["Outputs"]
    env = synth.environment(synth.function_id(routes.LIFECYCLE))
    assert env[schema.REVOCATIONS.env_var] == {"Ref": synth.table_id(schema.REVOCATIONS)}
