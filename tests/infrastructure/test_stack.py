"""The stack's outputs (read by `agent-auth ... --stack NAME`) and the deploy-time context."""

from __future__ import annotations

import json
from pathlib import Path

from agent_auth import schema
from agent_auth_infra.application import CDK_JSON, cdk_json_context
from agent_auth_infra.settings import DeploymentSettings

from .synthesis import Synthesized

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_outputs_use_the_schema_names(synth: Synthesized) -> None:
    # Given the stack outputs / Then every name the CLI looks up is there, and nothing else
    outputs = synth.template["Outputs"]
    expected = {spec.output_key for spec in schema.ALL_TABLES} | {
        schema.ISSUER_OUTPUT,
        schema.SIGNING_KEY_OUTPUT,
        schema.SIGNING_ALG_OUTPUT,
        # Added when key rotation became the default: what `agent-auth keys rotate --stack` reads (the
        # alias prefix of its keys, and how long their tokens live)
        schema.SIGNING_KEY_ALIAS_OUTPUT,
        schema.TOKEN_LIFETIME_OUTPUT,
    }
    assert set(outputs) == expected


def test_without_rotation_the_outputs_are_the_former_ones(fixed: Synthesized) -> None:
    # Given the opt-out (-c signingKeyRotation=false) / Then no rotation output: `keys rotate` refuses
    expected = {spec.output_key for spec in schema.ALL_TABLES} | {
        schema.ISSUER_OUTPUT,
        schema.SIGNING_KEY_OUTPUT,
        schema.SIGNING_ALG_OUTPUT,
    }
    assert set(fixed.template["Outputs"]) == expected


def test_table_outputs_name_their_tables(synth: Synthesized) -> None:
    for spec in schema.ALL_TABLES:
        assert synth.resources[synth.table_id(spec)]["Type"] == "AWS::DynamoDB::Table"


def test_signing_key_output_is_the_key_arn(synth: Synthesized) -> None:
    assert synth.template["Outputs"][schema.SIGNING_KEY_OUTPUT]["Value"] == {
        "Fn::GetAtt": [synth.key_id(), "Arn"]
    }


def test_cdk_json_defaults_are_the_code_defaults() -> None:
    # Given cdk.json's context / Then each deploy-time default it shows is the one the code applies
    context = cdk_json_context()
    defaults = DeploymentSettings()
    assert context["stackName"] == defaults.stack_name
    assert context["signingAlg"] == defaults.signing_alg
    assert context["previousSigningKeyArns"] == list(defaults.previous_signing_key_arns)
    assert context["tokenLifetimeSeconds"] == defaults.token_lifetime_seconds
    assert context["auditRetentionDays"] == defaults.audit_retention_days
    assert context["lambdaMemorySize"] == defaults.lambda_memory_size
    assert context["apiGatewayCloudWatchRole"] == defaults.api_gateway_cloud_watch_role


def test_cdk_json_runs_the_app_from_the_venv() -> None:
    app = json.loads(CDK_JSON.read_text())["app"]
    interpreter, script = app.split()
    assert (REPO_ROOT / script).is_file()
    assert interpreter == ".venv/bin/python"


def test_cdk_json_lists_the_identity_provider_choices_unset() -> None:
    # Given cdk.json's context / Then the provider choices are there to fill in, empty: Cognito by default
    context = cdk_json_context()
    for key in (
        "upstreamIssuer",
        "upstreamClientId",
        "upstreamClientSecretArn",
        "upstreamGroupsClaim",
        "cognitoDomainPrefix",
    ):
        assert context[key] == "", key
    assert DeploymentSettings().uses_cognito
