"""The REST API: every route reaches its function with any method, throttled, logged without content."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent_auth import routes
from agent_auth_infra.api import STAGE_NAME

from .synthesis import Synthesized, synthesize

# Access log variables that would carry request content (secrets, assertions, tokens) or headers.
FORBIDDEN_LOG_VARIABLES = re.compile(
    r"body|query|header|input|override|authorizer|util|stagevariables|caller|user\b|cognito", re.IGNORECASE
)


@pytest.fixture(scope="module")
def no_cloud_watch_role(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given an account that already has API Gateway's CloudWatch role configured
    return synthesize(tmp_path_factory.mktemp("no-cw-role"), {"apiGatewayCloudWatchRole": False})


def resource_paths(synth: Synthesized) -> dict[str, str]:
    """Logical id of each API Gateway resource -> its full path."""
    resources = synth.of_type("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def stage(synth: Synthesized) -> dict[str, Any]:
    (logical_id,) = synth.of_type("AWS::ApiGateway::Stage")
    return synth.props(logical_id)


def test_every_route_path_has_one_any_method_proxied_to_its_function(synth: Synthesized) -> None:
    # Given every method in the API, by path
    paths = resource_paths(synth)
    methods = {
        (paths[m["Properties"]["ResourceId"]["Ref"]], m["Properties"]["HttpMethod"]): m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
    }

    # Then there is exactly one ANY method per route path, and no other method anywhere
    assert set(methods) == {(path, "ANY") for spec in routes.FUNCTIONS for path in spec.paths}
    for spec in routes.FUNCTIONS:
        for path in spec.paths:
            integration = methods[(path, "ANY")]["Integration"]
            # And it is a Lambda proxy integration to the function that serves this path
            assert integration["Type"] == "AWS_PROXY"
            assert {"Fn::GetAtt": [synth.function_id(spec), "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_only_the_deployed_stage_may_invoke_the_functions(synth: Synthesized) -> None:
    permissions = synth.of_type("AWS::Lambda::Permission").values()
    invoked = set()
    for permission in permissions:
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert props["Action"] == "lambda:InvokeFunction"
        source = json.dumps(props["SourceArn"])
        assert "test-invoke-stage" not in source
        invoked.add(props["FunctionName"]["Fn::GetAtt"][0])
    assert invoked == {synth.function_id(spec) for spec in routes.FUNCTIONS}


def test_stage_is_throttled_and_never_traces_data(synth: Synthesized) -> None:
    # Given the stage's method settings
    props = stage(synth)
    assert props["StageName"] == STAGE_NAME
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in props["MethodSettings"]}

    # Then the whole stage is throttled
    default = settings[("/*", "*")]
    assert default["ThrottlingRateLimit"] > 0
    assert default["ThrottlingBurstLimit"] > 0
    # And every token route has its own, tighter limit
    for path in routes.TOKEN.paths:
        route = settings[("/" + path.replace("/", "~1"), "*")]  # "/~1token": the escaped full path
        assert 0 < route["ThrottlingRateLimit"] <= default["ThrottlingRateLimit"]
        assert 0 < route["ThrottlingBurstLimit"] <= default["ThrottlingBurstLimit"]
    # And no setting logs request or response data, or logs more than errors
    for setting in props["MethodSettings"]:
        assert setting["DataTraceEnabled"] is False, setting
        assert setting["LoggingLevel"] in ("ERROR", "OFF"), setting


def test_access_log_names_the_request_but_not_its_content(synth: Synthesized) -> None:
    # Given the stage's access log setting
    access_log = stage(synth)["AccessLogSetting"]
    fields = json.loads(access_log["Format"])
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", access_log["Format"]))

    # Then it records who asked what and the outcome
    assert {
        "$context.requestId",
        "$context.identity.sourceIp",
        "$context.httpMethod",
        "$context.resourcePath",
        "$context.status",
    } <= set(fields.values())
    # And never the body, the query string or a header
    assert not [v for v in variables if FORBIDDEN_LOG_VARIABLES.search(v)]
    assert "$input" not in access_log["Format"]
    # And it goes to a log group of the stack, kept for a while
    (log_group,) = (
        part["Ref"]
        for part in access_log["DestinationArn"]["Fn::Join"][1]
        if isinstance(part, dict) and "Ref" in part and part["Ref"] in synth.resources
    )
    assert synth.props(log_group)["RetentionInDays"] >= 365


def test_api_gateway_can_write_its_logs(synth: Synthesized) -> None:
    # Given the default context / Then API Gateway gets its account-level CloudWatch role, kept on delete
    (account,) = synth.of_type("AWS::ApiGateway::Account").values()
    role = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert synth.resources[role]["DeletionPolicy"] == "Retain"
    assert synth.error is None


def test_cloud_watch_role_can_be_left_to_the_account(no_cloud_watch_role: Synthesized) -> None:
    # Then the stack does not touch the account setting, and still synthesizes cleanly
    assert not no_cloud_watch_role.of_type("AWS::ApiGateway::Account")
    assert no_cloud_watch_role.error is None
    assert no_cloud_watch_role.violations() == []
