"""The upstream client secret from Secrets Manager: read once per execution environment, never from the
environment on AWS, and any failure answered as a temporary error (DependencyFailure -> 503)."""

from __future__ import annotations

import dataclasses

import pytest

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.secrets import SecretString
from agent_auth.errors import DependencyFailure
from agent_auth.handlers import authorize
from agent_auth.web.function import Container
from tests.conftest import Deployment
from tests.support import recording_aws_calls

UPSTREAM = "https://idp.example.com"
MISSING_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agent-auth-upstream-AbCdEf"


def put_secret(aws: AwsClients, **value: str | bytes) -> str:
    arn: str = aws.secretsmanager.create_secret(Name="agent-auth-upstream", **value)["ARN"]
    return arn


def test_reads_the_secret_string_once(aws: AwsClients) -> None:
    # Given a secret holding the client secret
    secret = SecretString(aws.secretsmanager, put_secret(aws, SecretString="s3cr3t-from-the-provider\n"))

    # When it is read twice / Then it is the string (trimmed), and Secrets Manager is asked once
    with recording_aws_calls() as log:
        assert secret.value() == "s3cr3t-from-the-provider"
        assert secret.value() == "s3cr3t-from-the-provider"
    assert log.calls["secretsmanager:GetSecretValue"] == 1


def test_a_missing_secret_is_a_dependency_failure_and_is_retried(aws: AwsClients) -> None:
    # Given an ARN with no secret behind it (yet)
    secret = SecretString(aws.secretsmanager, MISSING_ARN)

    # Then reading it fails as unavailable, and nothing is cached: the next read asks again
    with recording_aws_calls() as log, pytest.raises(DependencyFailure):
        secret.value()
    with recording_aws_calls() as again, pytest.raises(DependencyFailure):
        secret.value()
    assert log.calls["secretsmanager:GetSecretValue"] == again.calls["secretsmanager:GetSecretValue"] == 1


@pytest.mark.parametrize("value", [{"SecretBinary": b"\x00\x01"}, {"SecretString": "  "}])
def test_a_binary_or_blank_secret_is_refused(aws: AwsClients, value: dict[str, str | bytes]) -> None:
    secret = SecretString(aws.secretsmanager, put_secret(aws, **value))
    with pytest.raises(DependencyFailure):
        secret.value()


def test_the_secret_never_appears_in_its_repr(aws: AwsClients) -> None:
    secret = SecretString(aws.secretsmanager, put_secret(aws, SecretString="s3cr3t"))
    secret.value()
    assert "s3cr3t" not in repr(secret)


def test_authorization_flow_reads_the_secret_named_by_arn(deployment: Deployment) -> None:
    # Given the authorize function's settings as the stack sets them: an ARN, no UPSTREAM_CLIENT_SECRET
    arn = put_secret(deployment.clients, SecretString="s3cr3t")
    settings = dataclasses.replace(
        deployment.settings,
        upstream_issuer=UPSTREAM,
        upstream_client_id="agent-auth",
        upstream_client_secret="",
        upstream_client_secret_arn=arn,
    )
    assert "UPSTREAM_CLIENT_SECRET" not in settings.to_env()

    # When the flow is built / Then the secret is read from Secrets Manager, once
    with recording_aws_calls() as log:
        wiring.authorization_flow(settings, deployment.clients)
    assert log.calls["secretsmanager:GetSecretValue"] == 1


def test_an_unreadable_secret_answers_503_at_the_authorization_endpoint(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed authorize function whose secret cannot be read
    for name, value in {
        "UPSTREAM_ISSUER": UPSTREAM,
        "UPSTREAM_CLIENT_ID": "agent-auth",
        "UPSTREAM_CLIENT_SECRET_ARN": MISSING_ARN,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("UPSTREAM_CLIENT_SECRET", raising=False)
    Container.reset_all()

    # When a browser arrives at /authorize / Then it gets a temporary error, not a 500 or a guess
    event = {"httpMethod": "GET", "path": "/authorize", "resource": "/authorize", "headers": {}}
    response = authorize.lambda_handler(event, None)
    assert response["statusCode"] == 503
