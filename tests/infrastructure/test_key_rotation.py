"""Key rotation on AWS (context signingKeyRotation, on by default): keys made after the deploy are usable by
exactly the functions that need them, through the stack's alias prefix, and the well-known function reads
one item. `-c signingKeyRotation=false` opts out and deploys the former shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_auth import routes, schema
from agent_auth.config import key_alias_prefix
from agent_auth.signing_keys import KEY_SET_ITEM

from .synthesis import Synthesized

PREFIX = key_alias_prefix("AgentAuth")


@pytest.fixture(scope="module")
def rotating(synth: Synthesized) -> Synthesized:
    # Given the default app (cdk.json as it is): rotation is on without any context given
    return synth


def test_rotation_is_on_by_default_and_false_opts_out() -> None:
    from aws_cdk import App

    from agent_auth_infra.application import cdk_json_context
    from agent_auth_infra.settings import DeploymentSettings

    # Given cdk.json and the settings' own default (a context without the key) / Then both say on
    assert cdk_json_context()["signingKeyRotation"] is True
    assert DeploymentSettings.from_context(App(context={}).node).signing_key_rotation is True
    assert DeploymentSettings().signing_key_alias_prefix == PREFIX
    # And false opts out, from cdk.json (JSON) or from -c (a string)
    for value in (False, "false", "FALSE"):
        settings = DeploymentSettings.from_context(App(context={"signingKeyRotation": value}).node)
        assert settings.signing_key_rotation is False and settings.signing_key_alias_prefix == ""


def _conditioned(synth: Synthesized, spec: routes.FunctionSpec) -> list[dict[str, Any]]:
    role = synth.role_id(synth.function_id(spec))
    return [s for s in synth.statements(role) if "Condition" in s]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_token_function_signs_only_with_keys_behind_the_alias_prefix(rotating: Synthesized) -> None:
    # Then its one conditioned statement allows kms:Sign, and only on keys with an alias under the prefix
    [statement] = _conditioned(rotating, routes.TOKEN)
    assert _as_list(statement["Action"]) == ["kms:Sign"]
    assert statement["Condition"] == {"ForAnyValue:StringLike": {"kms:ResourceAliases": f"{PREFIX}/*"}}
    # And the resource is a key of this account and region, never an alias or another service
    assert json.dumps(statement["Resource"]).count(":key/*") == 1
    assert "AWS::AccountId" in json.dumps(statement["Resource"])


def test_the_wellknown_function_reads_public_keys_and_the_key_set_item_only(rotating: Synthesized) -> None:
    statements = _conditioned(rotating, routes.WELL_KNOWN)
    by_action = {_as_list(s["Action"])[0]: s for s in statements}
    # Then it may fetch public keys behind the prefix, and nothing else on them
    assert set(by_action) == {"kms:GetPublicKey", "dynamodb:GetItem"}
    assert by_action["kms:GetPublicKey"]["Condition"] == {
        "ForAnyValue:StringLike": {"kms:ResourceAliases": f"{PREFIX}/*"}
    }
    # And of the agents table it may read the key set's item and no agent (no secret hash)
    dynamo = by_action["dynamodb:GetItem"]
    assert dynamo["Resource"] == {"Fn::GetAtt": [rotating.table_id(schema.AGENTS), "Arn"]}
    assert dynamo["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [KEY_SET_ITEM]}}


def test_the_lifecycle_function_verifies_tokens_of_rotated_keys(rotating: Synthesized) -> None:
    # Then introspection and revocation may fetch the public key of keys behind the prefix (they verify
    # with every published key, wiring.public_keys); they read the key set with the agents GetItem the
    # client endpoint already has, unconditioned
    [statement] = _conditioned(rotating, routes.LIFECYCLE)
    assert _as_list(statement["Action"]) == ["kms:GetPublicKey"]
    assert statement["Condition"] == {"ForAnyValue:StringLike": {"kms:ResourceAliases": f"{PREFIX}/*"}}


def test_no_other_function_may_use_rotated_keys(rotating: Synthesized) -> None:
    for spec in routes.ALL_FUNCTIONS:
        if spec in (routes.TOKEN, routes.WELL_KNOWN, routes.LIFECYCLE):
            continue
        # Then no statement of any other function is conditioned on the alias prefix
        assert not _conditioned(rotating, spec), spec.name


def test_the_stack_key_is_the_initial_alias_and_outputs_tell_the_cli(rotating: Synthesized) -> None:
    # Then the stack's own key is behind <prefix>/initial, so the same condition covers it
    [alias] = rotating.of_type("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == f"{PREFIX}/initial"
    assert alias["Properties"]["TargetKeyId"] == {"Fn::GetAtt": [rotating.key_id(), "Arn"]}
    # And every function is told the prefix; the CLI reads it and the token lifetime from the outputs
    for spec in routes.ALL_FUNCTIONS:
        assert rotating.environment(rotating.function_id(spec))["SIGNING_KEY_ALIAS_PREFIX"] == PREFIX
    outputs = rotating.template["Outputs"]
    assert outputs[schema.SIGNING_KEY_ALIAS_OUTPUT]["Value"] == PREFIX
    assert outputs[schema.TOKEN_LIFETIME_OUTPUT]["Value"] == "900"


def test_rotation_synthesizes_clean_with_cdk_nag(rotating: Synthesized) -> None:
    # Then cdk-nag finds nothing unacknowledged (the key/* resource is acknowledged with its condition)
    assert rotating.violations() == []
    assert rotating.error is None


def test_without_rotation_nothing_of_it_is_deployed(fixed: Synthesized) -> None:
    # Given the opt-out (-c signingKeyRotation=false; this was the default before) / Then no alias, no
    # conditioned statement, no prefix, no rotation outputs, and still nothing cdk-nag would flag
    assert not fixed.of_type("AWS::KMS::Alias")
    assert not [s for s in fixed.statements() if "Condition" in s]
    for spec in routes.ALL_FUNCTIONS:
        assert "SIGNING_KEY_ALIAS_PREFIX" not in fixed.environment(fixed.function_id(spec))
    assert schema.SIGNING_KEY_ALIAS_OUTPUT not in fixed.template["Outputs"]
    assert schema.TOKEN_LIFETIME_OUTPUT not in fixed.template["Outputs"]
    assert fixed.violations() == [] and fixed.error is None


def test_a_bad_rotation_context_is_refused(tmp_path: Any) -> None:
    from agent_auth_infra.application import build_app
    from agent_auth_infra.settings import ContextError

    with pytest.raises(ContextError, match="signingKeyRotation"):
        build_app({"signingKeyRotation": "sometimes"}, str(tmp_path))
