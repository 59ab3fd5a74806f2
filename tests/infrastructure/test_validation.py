"""cdk-nag (AwsSolutions), CDK's built-in CloudFormation validation and cfn-lint all pass on the template."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from agent_auth_infra.application import build_app

from .synthesis import NAG_PLUGIN, NO_BUNDLING, Synthesized, synthesize_app

ACKNOWLEDGED = {
    "AwsSolutions-APIG2",  # request validation: the handlers validate and answer in OAuth's error format
    "AwsSolutions-APIG3",  # WAF: optional, the operator's choice
    "AwsSolutions-APIG4",  # no authorizer: OAuth endpoints authenticate clients themselves, or are public
    "AwsSolutions-COG4",  # no Cognito authorizer: same reason
    "AwsSolutions-L1",  # python3.12: the runtime the bundle's wheels are built for
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonAPIGatewayPushToCloudWatchLogs]",  # API Gateway's account-level logging role
    "AwsSolutions-IAM5[Resource::*]",  # the notifier's stream source: dynamodb:ListStreams takes no resource
    "AwsSolutions-SMG4",  # the Cognito client's secret: Cognito generates it, no rotation function can
    # Firehose names the objects it writes: PutObject and AbortMultipartUpload on the export bucket's keys
    "AwsSolutions-IAM5[Resource::<AuditExportBucketF652E280.Arn>/*]",
    # Key rotation, on by default: keys `agent-auth keys rotate` makes after the deploy have unknown ARNs,
    # so the token, well-known and lifecycle roles name this account's and region's keys, conditioned on
    # kms:ResourceAliases under the stack's signing prefix (tests/infrastructure/test_iam.py pins it)
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]",
}
CFN_LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
CFN_LINT_ACCEPTED = {
    # The Lambda L2 construct adds DependsOn on its role next to the GetAtt: redundant, harmless.
    "W3005",
}


def test_synth_passes_every_validation_plugin(synth: Synthesized) -> None:
    # Given the default app (cdk-nag AwsSolutions and CDK's CloudFormation validation run inside synth)
    # Then nothing is reported that was neither fixed nor acknowledged, and synth succeeded
    assert synth.violations() == []
    assert synth.error is None


def test_cdk_nag_ran_and_found_nothing_unacknowledged(synth: Synthesized) -> None:
    report = synth.plugin_report(NAG_PLUGIN)
    assert report is not None, "cdk-nag did not run: build_app must add AwsSolutionsChecks"
    assert report["conclusion"] == "success"
    assert synth.violations(NAG_PLUGIN) == []


def test_acknowledged_findings_are_the_known_ones_each_with_a_reason(synth: Synthesized) -> None:
    # Given what cdk-nag reports as acknowledged
    report = synth.plugin_report(NAG_PLUGIN)
    assert report is not None
    suppressed = report.get("suppressedViolations", [])

    # Then it is exactly the reviewed list (a new acknowledgment is a reviewed change of this test)
    assert {violation["ruleName"] for violation in suppressed} == ACKNOWLEDGED
    for violation in suppressed:
        assert len(violation["reason"]) > 40, violation


def test_the_rotated_keys_finding_is_acknowledged_on_exactly_the_three_roles(synth: Synthesized) -> None:
    # Given cdk-nag's acknowledged findings of the key/* resource (key rotation, on by default)
    report = synth.plugin_report(NAG_PLUGIN)
    assert report is not None
    paths = {
        construct["constructPath"]
        for violation in report.get("suppressedViolations", [])
        if violation["ruleName"].endswith(":key/*]")
        for construct in violation["violatingConstructs"]
    }
    # Then they are the roles of the functions that use rotated keys, and nothing else acknowledges it
    assert paths == {
        f"AgentAuth/Functions/{name}/Role/Resource" for name in ("token", "wellknown", "lifecycle")
    }


def test_an_unacknowledged_error_fails_the_synth(tmp_path: Path) -> None:
    # Given the app with one resource that breaks an AwsSolutions error rule (an AWS managed policy, IAM4)
    app = build_app(NO_BUNDLING, str(tmp_path))
    (stack,) = (child for child in app.node.children if isinstance(child, Stack))
    iam.Role(
        stack,
        "Careless",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("ReadOnlyAccess")],
    )

    # When it is synthesized
    result = synthesize_app(app, tmp_path)

    # Then synth fails, and the finding is reported against that role
    assert result.error is not None and result.error.startswith("ValidationFailed")
    assert [line for line in result.violations(NAG_PLUGIN) if "/Careless/" in line] == [
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/ReadOnlyAccess] at "
        "AgentAuth/Careless/Resource: The IAM user, role, or group uses AWS managed policies."
    ]


def test_an_unacknowledged_warning_is_reported(tmp_path: Path) -> None:
    # Given the app with a table without point-in-time recovery (AwsSolutions-DDB3, a warning)
    app = build_app(NO_BUNDLING, str(tmp_path))
    (stack,) = (child for child in app.node.children if isinstance(child, Stack))
    dynamodb.Table(
        stack, "Careless", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    )

    # When it is synthesized
    result = synthesize_app(app, tmp_path)

    # Then `cdk synth` only prints it, but the report has it, so test_synth_passes_every_validation_plugin
    # fails on warnings too
    assert [line.split(" at ")[0] for line in result.violations(NAG_PLUGIN)] == ["AwsSolutions-DDB3"]


@pytest.fixture(scope="module")
def cfn_lint_findings(synth: Synthesized) -> list[str]:
    (template,) = synth.outdir.glob("*.template.json")
    matches = lint_file(template, ManualArgs(regions=CFN_LINT_REGIONS))
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def test_cfn_lint_finds_no_errors(cfn_lint_findings: list[str]) -> None:
    assert [f for f in cfn_lint_findings if f.startswith("E")] == []


def test_cfn_lint_finds_no_warnings_beyond_the_accepted_ones(cfn_lint_findings: list[str]) -> None:
    assert [f for f in cfn_lint_findings if f.split()[0] not in CFN_LINT_ACCEPTED] == []
