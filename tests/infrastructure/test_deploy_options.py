"""What context chooses for the functions: log retention and reserved concurrency."""

from __future__ import annotations

from agent_auth import routes
from agent_auth_infra.application import cdk_json_context
from agent_auth_infra.settings import DeploymentSettings

from .conftest import FULL_CONTEXT
from .synthesis import Synthesized


def log_retention(synth: Synthesized, spec: routes.FunctionSpec) -> int:
    log_group = synth.props(synth.function_id(spec))["LoggingConfig"]["LogGroup"]["Ref"]
    days: int = synth.props(log_group)["RetentionInDays"]
    return days


def test_no_function_reserves_concurrency_by_default(synth: Synthesized) -> None:
    # A fresh account's limit may be 10, and Lambda keeps 10 unreserved: any reservation would fail there
    for spec in routes.ALL_FUNCTIONS:
        assert "ReservedConcurrentExecutions" not in synth.props(synth.function_id(spec)), spec.name
        assert log_retention(synth, spec) == 90


def test_reserved_concurrency_and_log_retention_come_from_context(full: Synthesized) -> None:
    reserved = FULL_CONTEXT["reservedConcurrency"]
    assert isinstance(reserved, dict)
    for spec in routes.ALL_FUNCTIONS:
        props = full.props(full.function_id(spec))
        assert props.get("ReservedConcurrentExecutions") == reserved.get(spec.name), spec.name
        assert log_retention(full, spec) == FULL_CONTEXT["logRetentionDays"]


def test_cdk_json_shows_the_operations_defaults() -> None:
    # Given cdk.json's context / Then each operations choice is listed with the default the code applies
    context = cdk_json_context()
    defaults = DeploymentSettings()
    assert context["stage"] == defaults.stage
    assert context["logRetentionDays"] == defaults.log_retention_days
    assert context["alarmEmail"] == defaults.alarm_email
    assert context["waf"] is defaults.waf
    assert (context["domainName"], context["certificateArn"], context["hostedZoneId"]) == ("", "", "")
    assert context["auditExportDays"] == defaults.audit_export_days
    assert context["auditObjectLock"] is defaults.audit_object_lock
    assert context["reservedConcurrency"] == dict(defaults.reserved_concurrency)
