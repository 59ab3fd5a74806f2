"""One Lambda function per agent_auth.routes.FunctionSpec, configured as agent_auth.config reads it."""

from __future__ import annotations

from typing import Any

import pytest

from agent_auth import config, routes, schema
from agent_auth_infra.api import STAGE_NAME

from .synthesis import Synthesized

FUNCTIONS = pytest.mark.parametrize("spec", routes.ALL_FUNCTIONS, ids=lambda s: s.name)


def rest_api_id(synth: Synthesized) -> str:
    (logical_id,) = synth.of_type("AWS::ApiGateway::RestApi")
    return logical_id


def test_one_function_per_route_spec_and_nothing_else(synth: Synthesized) -> None:
    # Given the template / Then every function is one of routes.ALL_FUNCTIONS, each exactly once
    handlers = sorted(f["Properties"]["Handler"] for f in synth.of_type("AWS::Lambda::Function").values())
    assert handlers == sorted(spec.handler for spec in routes.ALL_FUNCTIONS)


def test_every_function_runs_python_3_12_on_arm64(synth: Synthesized) -> None:
    # Given every Lambda function in the template (ours and any a construct may add)
    functions = synth.of_type("AWS::Lambda::Function")
    assert functions
    for logical_id, function in functions.items():
        # Then it runs the runtime the bundle's wheels were fetched for
        assert function["Properties"]["Runtime"] == "python3.12", logical_id
        assert function["Properties"]["Architectures"] == ["arm64"], logical_id


@FUNCTIONS
def test_function_sizing(synth: Synthesized, spec: routes.FunctionSpec) -> None:
    props = synth.props(synth.function_id(spec))
    assert props["MemorySize"] == 512
    assert props["Timeout"] <= 10


@FUNCTIONS
def test_environment_names_the_stack_resources(synth: Synthesized, spec: routes.FunctionSpec) -> None:
    # Given the function's environment
    env = synth.environment(synth.function_id(spec))

    # Then each table variable (config reads them all, see below) refers to the table the stack outputs
    # for that spec, and there is no variable for a table the schema does not define
    table_vars = {table.env_var: table for table in schema.ALL_TABLES}
    assert {name for name in env if name.endswith("_TABLE")} <= set(table_vars)
    for name, table in table_vars.items():
        if name in env:
            assert env[name] == {"Ref": synth.table_id(table)}, name
    for table in (schema.AGENTS, schema.REPLAY, schema.AUDIT):  # what the token endpoint reads today
        assert table.env_var in env
    assert env["SIGNING_KEY_ARN"] == {"Fn::GetAtt": [synth.key_id(), "Arn"]}
    assert env["APPROVAL_KEY_ARN"] == {"Fn::GetAtt": [synth.key_id("GENERATE_VERIFY_MAC"), "Arn"]}
    assert env["SIGNING_ALG"] == "RS256"
    assert env["TOKEN_LIFETIME_SECONDS"] == str(config.DEFAULT_TOKEN_LIFETIME)
    # And Lambda's own AWS_REGION is left alone
    assert "AWS_REGION" not in env


@FUNCTIONS
def test_issuer_is_built_from_the_rest_api_not_its_deployment(
    synth: Synthesized, spec: routes.FunctionSpec
) -> None:
    # Given the function's ISSUER
    issuer = synth.environment(synth.function_id(spec))["ISSUER"]

    # Then it is https://{api id}.execute-api.{region}.{url suffix}/{stage}, from the RestApi's Ref
    assert issuer == {
        "Fn::Join": [
            "",
            [
                "https://",
                {"Ref": rest_api_id(synth)},
                ".execute-api.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                f"/{STAGE_NAME}",
            ],
        ]
    }
    # And it is the URL the stack publishes as its issuer
    assert synth.template["Outputs"][schema.ISSUER_OUTPUT]["Value"] == issuer


@FUNCTIONS
def test_function_does_not_depend_on_the_deployment_or_stage(
    synth: Synthesized, spec: routes.FunctionSpec
) -> None:
    # Given the deployment and stage (which depend on the methods, which depend on the functions)
    later = set(synth.of_type("AWS::ApiGateway::Deployment")) | set(synth.of_type("AWS::ApiGateway::Stage"))
    function = synth.resources[synth.function_id(spec)]

    # Then the function references neither, so there is no dependency cycle
    assert not later & set(_references(function)), later & set(_references(function))


@FUNCTIONS
def test_environment_is_what_config_reads(synth: Synthesized, spec: routes.FunctionSpec) -> None:
    # Given the environment with CloudFormation values stood in for, plus what Lambda sets itself
    env = {name: _placeholder(value) for name, value in synth.environment(synth.function_id(spec)).items()}
    env["AWS_REGION"] = "eu-west-1"

    # When the function reads its configuration / Then it starts, with every variable config writes
    settings = config.Settings.from_env(env)
    assert set(settings.to_env()) <= set(env)
    assert settings.token_lifetime == config.DEFAULT_TOKEN_LIFETIME


@FUNCTIONS
def test_events_are_never_logged(synth: Synthesized, spec: routes.FunctionSpec) -> None:
    env = synth.environment(synth.function_id(spec))
    assert env["POWERTOOLS_SERVICE_NAME"] == "agent-auth"
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false") == "false"
    assert env.get("POWERTOOLS_LOG_LEVEL", "INFO") not in ("DEBUG", "TRACE")


def test_each_function_has_its_own_role_and_log_group(synth: Synthesized) -> None:
    # Given every function
    roles, log_groups = [], []
    for spec in routes.ALL_FUNCTIONS:
        props = synth.props(synth.function_id(spec))
        roles.append(synth.role_id(synth.function_id(spec)))
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        log_groups.append(log_group)
        # Then its log group is one the stack creates, with a retention
        assert synth.props(log_group)["RetentionInDays"] > 0
    # And no two functions share a role or a log group
    assert len(set(roles)) == len(roles) == len(routes.ALL_FUNCTIONS)
    assert len(set(log_groups)) == len(log_groups)


def _references(value: Any) -> list[str]:
    """Logical ids referenced anywhere in a resource (Ref, Fn::GetAtt, DependsOn)."""
    if isinstance(value, dict):
        found: list[str] = []
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.append(item)
            elif key == "Fn::GetAtt":
                found.append(item[0] if isinstance(item, list) else item.split(".")[0])
            elif key == "DependsOn":
                found += item if isinstance(item, list) else [item]
            else:
                found += _references(item)
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


def _placeholder(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_placeholder(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"ref-{value['Ref']}"
    if "Fn::GetAtt" in value:
        return "arn:aws:kms:eu-west-1:111122223333:key/" + "-".join(value["Fn::GetAtt"])
    raise AssertionError(f"unexpected value {value!r}")


def test_every_function_and_the_api_stage_are_traced_without_payloads(synth: Synthesized) -> None:
    # Given every function and the API's stage
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        props = function["Properties"]
        # Then each invocation is an X-Ray segment, and no tracer captures a response (a token)
        assert props["TracingConfig"] == {"Mode": "Active"}, logical_id
        assert props["Environment"]["Variables"]["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["TracingEnabled"] is True
    # And API Gateway never logs full requests and responses (data trace)
    assert all(s.get("DataTraceEnabled") is False for s in stage["Properties"]["MethodSettings"])
