"""The dashboard and alarms: is the server up, fast, refusing what it should, and are approvals moving?

Per-outcome counts come from the functions themselves (agent_auth.outcome_metrics, written as embedded
metric format lines derived from each audit record), everything else from what AWS publishes for Lambda
and API Gateway. Every alarm notifies one SNS topic; context alarmEmail subscribes an address to it.

KMS publishes no per-call failure metric, so the functions count failed KMS calls themselves
(KmsFailures); a refused-token spike and expired access requests (nobody approved in time) come from the
audit-derived counts. Alarms treat missing data as fine: no traffic is not an outage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from agent_auth import outcome_metrics, routes

SERVICE = "agent-auth"
"""POWERTOOLS_SERVICE_NAME (functions.py): Powertools adds it as the `service` dimension."""
PERIOD = Duration.minutes(5)


@dataclass(frozen=True)
class Thresholds:
    """What counts as wrong, per 5-minute period unless said otherwise."""

    api_5xx: int = 5
    token_latency_p99_ms: int = 1000
    """The token function's p99 duration: a KMS Sign and a few DynamoDB calls take ~100 ms warm."""
    api_latency_p99_ms: int = 2000
    refused_tokens: int = 100
    """Refusals (bad credentials, denied scopes) beyond normal misconfiguration: someone is guessing."""
    notifier_iterator_age_ms: int = 300_000
    """A pending request waits this long before its approvers are even emailed."""
    export_freshness_s: int = 1800
    """The oldest audit record not yet in S3 (Firehose buffers up to 5 minutes, Pipes up to 1)."""


THRESHOLDS = Thresholds()


def metrics_namespace(stack_name: str) -> str:
    """One namespace per stack, so two deployments in one account keep their counts apart."""
    return f"{SERVICE}/{stack_name}"


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[routes.FunctionSpec, lambda_.Function],
        rest_api: apigateway.RestApi,
        namespace: str,
        alarm_email: str,
        export_stream_name: str | None = None,
        export_pipe_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._namespace = namespace
        self.topic = sns.Topic(self, "Alarms", display_name="agent-auth alarms", enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThisAccountsAlarms",
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        # Not encrypted with a key: it carries only alarm state changes (names and metric values, never
        # a token or a record), and CloudWatch cannot publish to a topic under the AWS managed SNS key.
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []

        for spec, function in functions.items():
            self._alarm(
                f"{spec.name}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                1,
                f"The {spec.name} function raised (an answer 500 or a stream batch retried).",
            )
            self._alarm(
                f"{spec.name}Throttles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                1,
                f"Lambda throttled the {spec.name} function: raise its reserved concurrency.",
            )
        token = functions[routes.TOKEN]
        self._alarm(
            "TokenLatencyP99",
            token.metric_duration(period=PERIOD, statistic="p99"),
            THRESHOLDS.token_latency_p99_ms,
            "The token function's p99 duration: KMS or DynamoDB is slow.",
            periods=3,
        )
        self._alarm(
            "ApiLatencyP99",
            rest_api.metric_latency(period=PERIOD, statistic="p99"),
            THRESHOLDS.api_latency_p99_ms,
            "The API's p99 latency, across every route.",
            periods=3,
        )
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
            THRESHOLDS.api_5xx,
            "Answers 5xx: 503 when KMS or DynamoDB fails (fail closed), 500 for a bug.",
        )
        self._alarm(
            "KmsFailures",
            self.count(outcome_metrics.KMS_FAILURES, search=False),
            1,
            "A KMS call (Sign, GenerateMac, VerifyMac) failed: tokens or approval links are refused.",
        )
        self._alarm(
            "RefusedTokensSpike",
            self.count(outcome_metrics.TOKENS_REFUSED, search=False),
            THRESHOLDS.refused_tokens,
            "Many refused token requests: credential guessing or a broken client (see the audit trail).",
        )
        self._alarm(
            "AccessRequestsExpired",
            self.count(outcome_metrics.REQUESTS_EXPIRED, search=False, period=Duration.hours(1)),
            1,
            "An access request expired while pending: its approvers did not decide in time.",
        )
        notifier = functions.get(routes.NOTIFIER)
        if notifier is not None:
            self._alarm(
                "NotifierIteratorAge",
                notifier.metric("IteratorAge", period=PERIOD, statistic="Maximum"),
                THRESHOLDS.notifier_iterator_age_ms,
                "New access requests wait for their approval email: the notifier is behind or failing.",
            )
        if export_stream_name is not None:
            self._alarm(
                "AuditExportFreshness",
                cloudwatch.Metric(
                    namespace="AWS/Firehose",
                    metric_name="DeliveryToS3.DataFreshness",
                    dimensions_map={"DeliveryStreamName": export_stream_name},
                    statistic="Maximum",
                    period=PERIOD,
                ),
                THRESHOLDS.export_freshness_s,
                "Audit records are not reaching the S3 export (Firehose cannot write to the bucket).",
            )
        if export_pipe_name is not None:
            self._alarm(
                "AuditExportPipeFailures",
                cloudwatch.Metric(
                    namespace="AWS/EventBridge/Pipes",
                    metric_name="ExecutionFailed",
                    dimensions_map={"PipeName": export_pipe_name},
                    statistic="Sum",
                    period=PERIOD,
                ),
                1,
                "The audit export pipe failed to hand records to Firehose (retried for the stream's 24 h).",
            )
        self.dashboard = self._dashboard(functions, rest_api)

    def count(
        self, metric_name: str, *, search: bool, dimension: str = "", period: Duration = PERIOD
    ) -> cloudwatch.IMetric:
        """An audit-derived count: the total (what alarms watch), or every slice of one dimension."""
        if not search:
            return cloudwatch.Metric(
                namespace=self._namespace,
                metric_name=metric_name,
                dimensions_map={"service": SERVICE},
                statistic="Sum",
                period=period,
            )
        return cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{self._namespace},{dimension},service}} MetricName=\"{metric_name}\"', "
                f"'Sum', {int(period.to_seconds())})"
            ),
            using_metrics={},
            label=metric_name,
            period=period,
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        periods: int = 1,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"agent-auth: {description}",
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)

    def _dashboard(
        self, functions: Mapping[routes.FunctionSpec, lambda_.Function], rest_api: apigateway.RestApi
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))

        def per_function(title: str, metric: str, statistic: str) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title,
                left=[
                    function.metric(metric, period=PERIOD, statistic=statistic, label=spec.name)
                    for spec, function in functions.items()
                ],
                width=8,
            )

        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tokens issued, by grant type",
                left=[self.count(outcome_metrics.TOKENS_ISSUED, search=True, dimension="GrantType")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Tokens refused, by reason",
                left=[self.count(outcome_metrics.TOKENS_REFUSED, search=True, dimension="Reason")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Approvals, requests and exchanges",
                left=[
                    self.count(outcome_metrics.APPROVAL_DECISIONS, search=True, dimension="Outcome"),
                    self.count(outcome_metrics.ACCESS_REQUESTS, search=True, dimension="Decision"),
                    self.count(outcome_metrics.EXCHANGES, search=True, dimension="Decision"),
                    self.count(outcome_metrics.REQUESTS_EXPIRED, search=False),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    rest_api.metric_count(period=PERIOD, statistic="Sum"),
                    rest_api.metric_client_error(period=PERIOD, statistic="Sum"),
                    rest_api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency (p50, p99)",
                left=[
                    rest_api.metric_latency(period=PERIOD, statistic="p50"),
                    rest_api.metric_latency(period=PERIOD, statistic="p99"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="KMS and dependency failures, notifications",
                left=[
                    self.count(outcome_metrics.KMS_FAILURES, search=True, dimension="Operation"),
                    self.count(outcome_metrics.DEPENDENCY_FAILURES, search=True, dimension="Action"),
                    self.count(outcome_metrics.NOTIFICATIONS, search=True, dimension="Outcome"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            per_function("Function errors", "Errors", "Sum"),
            per_function("Function throttles", "Throttles", "Sum"),
            per_function("Function duration p99", "Duration", "p99"),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=self.alarms, width=24))
        return dashboard
