"""Alarms and the dashboard: every function watched, audit-derived counts read where functions write them."""

from __future__ import annotations

from typing import Any

from agent_auth import outcome_metrics, routes

from .synthesis import Synthesized


def alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in synth.of_type("AWS::CloudWatch::Alarm").items()}


def topic_id(synth: Synthesized) -> str:
    (logical_id,) = synth.of_type("AWS::SNS::Topic")
    return logical_id


def dimension(alarm: dict[str, Any], name: str) -> Any:
    return next(d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name)


def on_function(synth: Synthesized, metric: str, spec: routes.FunctionSpec) -> list[dict[str, Any]]:
    function = {"Ref": synth.function_id(spec)}
    return [
        alarm
        for alarm in alarms(synth).values()
        if alarm.get("MetricName") == metric
        and alarm.get("Namespace") == "AWS/Lambda"
        and dimension(alarm, "FunctionName") == function
    ]


def test_every_function_alarms_on_errors_and_throttles(synth: Synthesized) -> None:
    # Given every function the stack deploys / Then one alarm on its errors and one on its throttles
    for spec in routes.ALL_FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            (alarm,) = on_function(synth, metric, spec)
            assert alarm["Threshold"] == 1 and alarm["Statistic"] == "Sum", (spec.name, metric)


def test_every_alarm_notifies_the_topic_and_tolerates_no_traffic(synth: Synthesized) -> None:
    topic = {"Ref": topic_id(synth)}
    for logical_id, alarm in alarms(synth).items():
        assert alarm["AlarmActions"] == [topic], logical_id
        assert alarm["OKActions"] == [topic], logical_id
        assert alarm["TreatMissingData"] == "notBreaching", logical_id


def test_token_latency_is_watched_at_p99(synth: Synthesized) -> None:
    (alarm,) = on_function(synth, "Duration", routes.TOKEN)
    assert alarm["ExtendedStatistic"] == "p99"
    api_latency = [a for a in alarms(synth).values() if a.get("MetricName") == "Latency"]
    assert [a["ExtendedStatistic"] for a in api_latency] == ["p99"]


def test_audit_derived_alarms_read_where_the_functions_write(synth: Synthesized) -> None:
    # Given the metrics namespace and service name the functions are told
    env = synth.environment(synth.function_id(routes.TOKEN))
    namespace, service = env[outcome_metrics.NAMESPACE_ENV], env["POWERTOOLS_SERVICE_NAME"]

    # Then the KMS, refused-token and expired-request alarms watch the totals there
    custom = {a["MetricName"]: a for a in alarms(synth).values() if a.get("Namespace") == namespace}
    assert set(custom) == {
        outcome_metrics.KMS_FAILURES,
        outcome_metrics.TOKENS_REFUSED,
        outcome_metrics.REQUESTS_EXPIRED,
    }
    for alarm in custom.values():
        assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
        assert alarm["Statistic"] == "Sum"
    assert custom[outcome_metrics.KMS_FAILURES]["Threshold"] == 1
    assert custom[outcome_metrics.REQUESTS_EXPIRED]["Period"] == 3600


def test_every_function_gets_the_same_metrics_namespace(synth: Synthesized) -> None:
    namespaces = {
        synth.environment(synth.function_id(spec))[outcome_metrics.NAMESPACE_ENV]
        for spec in routes.ALL_FUNCTIONS
    }
    assert namespaces == {"agent-auth/AgentAuth"}


def test_notifier_lag_is_watched(synth: Synthesized) -> None:
    (alarm,) = on_function(synth, "IteratorAge", routes.NOTIFIER)
    assert alarm["Statistic"] == "Maximum"


def test_dashboard_shows_the_outcomes(synth: Synthesized) -> None:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in (
        outcome_metrics.TOKENS_ISSUED,
        outcome_metrics.TOKENS_REFUSED,
        outcome_metrics.APPROVAL_DECISIONS,
        outcome_metrics.EXCHANGES,
        outcome_metrics.KMS_FAILURES,
    ):
        assert metric in body, metric


def test_alarm_email_is_subscribed_only_when_given(synth: Synthesized, full: Synthesized) -> None:
    assert synth.of_type("AWS::SNS::Subscription") == {}
    (subscription,) = full.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id(full)}


def test_only_this_accounts_cloudwatch_may_publish_and_only_over_tls(synth: Synthesized) -> None:
    (policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
