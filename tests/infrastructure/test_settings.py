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


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:agent-auth/upstream-AbCdEf"
ENTRA = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"


def test_without_an_issuer_the_cognito_default_is_used() -> None:
    chosen = settings()
    assert chosen.uses_cognito
    assert chosen.groups_claim == "cognito:groups"


def test_an_upstream_provider_is_taken_as_given() -> None:
    # Given another provider's issuer (exactly as its discovery document names it), client and secret
    chosen = settings(upstreamIssuer=ENTRA, upstreamClientId="abc-123", upstreamClientSecretArn=SECRET_ARN)

    # Then no Cognito pool is made, and the groups claim defaults to `groups`
    assert not chosen.uses_cognito
    assert (chosen.upstream_issuer, chosen.upstream_client_id) == (ENTRA, "abc-123")
    assert chosen.upstream_client_secret_arn == SECRET_ARN
    assert chosen.groups_claim == "groups"
    assert (
        settings(
            upstreamIssuer=ENTRA,
            upstreamClientId="abc-123",
            upstreamClientSecretArn=SECRET_ARN,
            upstreamGroupsClaim="roles",
        ).groups_claim
        == "roles"
    )


def test_the_cognito_domain_prefix_may_be_chosen() -> None:
    assert settings(cognitoDomainPrefix="acme-agents").cognito_domain_prefix == "acme-agents"


@pytest.mark.parametrize(
    ("key", "context"),
    [
        ("upstreamIssuer", {"upstreamIssuer": "http://idp.example.com"}),
        ("upstreamIssuer", {"upstreamIssuer": "https://idp.example.com/?tenant=a"}),
        ("upstreamIssuer", {"upstreamIssuer": "idp.example.com"}),
        ("upstreamClientId", {"upstreamIssuer": ENTRA, "upstreamClientSecretArn": SECRET_ARN}),
        ("upstreamClientSecretArn", {"upstreamIssuer": ENTRA, "upstreamClientId": "abc"}),
        (
            "upstreamClientSecretArn",  # a partial ARN (no suffix): IAM would not match the real one
            {
                "upstreamIssuer": ENTRA,
                "upstreamClientId": "abc",
                "upstreamClientSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:upstream",
            },
        ),
        (
            "upstreamClientSecretArn",
            {"upstreamIssuer": ENTRA, "upstreamClientId": "abc", "upstreamClientSecretArn": KEY_ARN},
        ),
        ("upstreamClientId", {"upstreamClientId": "abc"}),  # no issuer: Cognito makes its own client
        ("upstreamClientSecretArn", {"upstreamClientSecretArn": SECRET_ARN}),
        ("upstreamClientId", {"upstreamIssuer": ENTRA, "upstreamClientId": "a b"}),
        ("upstreamGroupsClaim", {"upstreamGroupsClaim": ["groups"]}),
        ("cognitoDomainPrefix", {"cognitoDomainPrefix": "my-cognito-login"}),
        ("cognitoDomainPrefix", {"cognitoDomainPrefix": "Upper-Case"}),
        ("cognitoDomainPrefix", {"cognitoDomainPrefix": "-leading"}),
        (
            "cognitoDomainPrefix",
            {
                "upstreamIssuer": ENTRA,
                "upstreamClientId": "abc",
                "upstreamClientSecretArn": SECRET_ARN,
                "cognitoDomainPrefix": "acme",
            },
        ),
    ],
)
def test_bad_upstream_context_stops_the_synth_naming_the_key(key: str, context: dict[str, Any]) -> None:
    with pytest.raises(ContextError, match=key):
        settings(**context)


def test_operations_context_is_parsed_from_strings() -> None:
    # Given the operations choices as `-c` passes them
    chosen = settings(
        stage="prod",
        logRetentionDays="30",
        alarmEmail="oncall@example.com",
        waf="true",
        domainName="auth.example.com",
        certificateArn="arn:aws:acm:eu-west-1:111122223333:certificate/11111111-2222-3333-4444-555555555555",
        auditObjectLock="true",
        auditExportDays="3650",
        reservedConcurrency="token=20,notifier=2",
    )
    # Then each becomes its typed setting
    assert (chosen.stage, chosen.log_retention_days, chosen.alarm_email) == ("prod", 30, "oncall@example.com")
    assert chosen.waf is True and chosen.audit_object_lock is True
    assert chosen.domain_name == "auth.example.com" and chosen.hosted_zone_id == ""
    assert chosen.audit_export_days == 3650
    assert chosen.reserved_concurrency == (("notifier", 2), ("token", 20))


def test_operations_defaults_reserve_nothing_and_turn_nothing_on() -> None:
    # A fresh account may allow only 10 concurrent executions, all of which must stay unreserved
    defaults = settings()
    assert defaults.reserved_concurrency == ()
    assert (defaults.waf, defaults.audit_object_lock, defaults.alarm_email, defaults.domain_name) == (
        False,
        False,
        "",
        "",
    )
    assert defaults.stage == "v1" and defaults.log_retention_days == 90


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stage": "v1/beta"}, "context stage must be 1-64 letters"),
        ({"logRetentionDays": "45"}, "context logRetentionDays must be one of 1, 3, 5"),
        ({"alarmEmail": "not-an-address"}, "context alarmEmail must be an email address"),
        ({"waf": "maybe"}, "context waf must be true or false"),
        ({"domainName": "auth.example.com"}, "context certificateArn must be the ARN of an ACM certificate"),
        ({"domainName": "Auth Example"}, "context domainName must be a string without spaces"),
        ({"certificateArn": "arn:aws:acm:eu-west-1:111122223333:certificate/x"}, "needs domainName"),
        ({"hostedZoneId": "Z123"}, "context hostedZoneId needs domainName"),
        ({"reservedConcurrency": {"tokens": 5}}, "context reservedConcurrency names 'tokens', not one of"),
        (
            {"reservedConcurrency": {"token": 0}},
            "context reservedConcurrency.token must be a positive integer",
        ),
        ({"auditExportDays": "-1"}, "context auditExportDays must be a positive integer"),
    ],
)
def test_bad_operations_context_is_refused_with_its_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError, match=message.replace(".", r"\.")):
        settings(**context)
