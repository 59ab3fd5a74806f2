"""Deploy-time choices from CDK context: JSON from cdk.json, strings from `cdk deploy -c KEY=VALUE`."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from agent_auth_infra.settings import ContextError, DeploymentSettings

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
OTHER_ARN = "arn:aws:kms:eu-west-1:111122223333:key/66666666-7777-8888-9999-000000000000"


def settings(**context: Any) -> DeploymentSettings:
    return DeploymentSettings.from_context(App(context=context).node)


def test_no_context_gives_the_defaults() -> None:
    assert settings() == DeploymentSettings()


def test_command_line_strings_are_parsed() -> None:
    # Given values as `-c` passes them (always strings)
    chosen = settings(
        signingAlg="ES256",
        previousSigningKeyArns=f"{KEY_ARN},{OTHER_ARN}",
        tokenLifetimeSeconds="600",
        auditRetentionDays="30",
        lambdaMemorySize="1024",
        apiGatewayCloudWatchRole="false",
        stackName="AgentAuthStaging",
    )
    # Then they become typed settings
    assert chosen == DeploymentSettings(
        stack_name="AgentAuthStaging",
        signing_alg="ES256",
        previous_signing_key_arns=(KEY_ARN, OTHER_ARN),
        token_lifetime_seconds=600,
        audit_retention_days=30,
        lambda_memory_size=1024,
        api_gateway_cloud_watch_role=False,
    )


def test_cdk_json_values_are_accepted() -> None:
    chosen = settings(
        previousSigningKeyArns=[KEY_ARN], tokenLifetimeSeconds=300, apiGatewayCloudWatchRole=True
    )
    assert chosen.previous_signing_key_arns == (KEY_ARN,)
    assert chosen.token_lifetime_seconds == 300
    assert chosen.api_gateway_cloud_watch_role is True


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("signingAlg", "none"),
        ("tokenLifetimeSeconds", "0"),
        ("tokenLifetimeSeconds", "-5"),
        ("tokenLifetimeSeconds", True),
        ("auditRetentionDays", "a year"),
        ("lambdaMemorySize", "1.5"),
        ("apiGatewayCloudWatchRole", "maybe"),
        ("previousSigningKeyArns", "alias/old-key"),
        ("previousSigningKeyArns", {"arn": KEY_ARN}),
    ],
)
def test_bad_values_stop_the_synth_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ContextError, match=key):
        settings(**{key: value})
