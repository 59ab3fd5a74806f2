"""The REST API: every path of agent_auth.routes, any method, proxied to its function.

ANY reaches the function for every method, so the function itself answers 405 (with `Allow`) and audits
it. Throttling is set per stage and, tighter, on the token endpoint. Access logs name the request, the
caller's address and the outcome, but never a body, a query string or a header: those carry secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from agent_auth import routes
from agent_auth_infra.nag import acknowledge

STAGE_NAME = "v1"


@dataclass(frozen=True)
class Throttle:
    rate: float
    """Steady requests per second."""
    burst: int


STAGE_THROTTLE = Throttle(rate=100, burst=200)
ROUTE_THROTTLES = {routes.TOKEN: Throttle(rate=50, burst=100)}
"""Tighter limits for routes that cost a KMS call and DynamoDB writes on every request."""

# Only $context variables that carry no request content. The query string, the body and the headers are
# left out on purpose (client secrets, assertions and tokens travel there).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "method": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "errorType": "$context.error.responseType",
}
ACCESS_LOG_RETENTION = logs.RetentionDays.ONE_YEAR
METHOD_LOGGING_LEVEL = apigateway.MethodLoggingLevel.ERROR


class Api(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cloud_watch_role: bool) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=ACCESS_LOG_RETENTION)
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=Stack.of(self).stack_name,
            description="agent-auth: OAuth 2.0 authorization server for AI agents",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            cloud_watch_role=cloud_watch_role,
            # The role is account-wide (one per region); other APIs in the account may rely on it.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if cloud_watch_role else None,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=STAGE_THROTTLE.rate,
                throttling_burst_limit=STAGE_THROTTLE.burst,
                logging_level=METHOD_LOGGING_LEVEL,
                data_trace_enabled=False,  # would log full requests and responses: secrets and tokens
                metrics_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                method_options={
                    f"{path}/*": apigateway.MethodDeploymentOptions(
                        throttling_rate_limit=throttle.rate,
                        throttling_burst_limit=throttle.burst,
                        # A method override replaces the stage's settings, so they are repeated here.
                        logging_level=METHOD_LOGGING_LEVEL,
                        data_trace_enabled=False,
                        metrics_enabled=True,
                    )
                    for spec, throttle in ROUTE_THROTTLES.items()
                    for path in spec.paths
                },
            ),
        )
        # RestApi adds an "Endpoint" output with a trailing slash; the issuer output is the one URL to use.
        self.rest_api.node.try_remove_child("Endpoint")
        self._acknowledge_findings()

    def _acknowledge_findings(self) -> None:
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                self.rest_api,
                rule,
                "OAuth endpoints are public by design: the token endpoint authenticates the client itself "
                "(RFC 6749 §2.3, private_key_jwt per RFC 7523), and discovery (RFC 8414) and the JWKS "
                "must be readable by anyone. An API Gateway authorizer cannot perform OAuth client "
                "authentication.",
            )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG2",
            "The handlers validate every request strictly (RFC 6749 §3.1/§3.2: repeated parameters, invalid "
            "UTF-8, size and field limits) and answer with RFC 6749 §5.2 errors; an API Gateway validator "
            "would answer in its own format, which OAuth clients cannot parse.",
        )
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "A WAF web ACL is optional and left to the operator (it costs per ACL and per request, and "
            "rules are usually shared account-wide); the stage is throttled per stage and per route. "
            "Associate a web ACL with the stage to add IP-based rate rules.",
        )
        role = self.rest_api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "The account-level role API Gateway uses to write stage logs; AWS documents this managed "
                "policy for it and keeps it in step with what API Gateway needs.",
            )

    @property
    def issuer(self) -> str:
        """The stage's base URL, built from the RestApi itself rather than its deployment or stage, so a
        function can name it without a dependency cycle (the stage depends on the functions' methods)."""
        stack = Stack.of(self)
        return Fn.join(
            "",
            [
                "https://",
                self.rest_api.rest_api_id,
                ".execute-api.",
                stack.region,
                ".",
                stack.url_suffix,
                f"/{STAGE_NAME}",
            ],
        )

    def route(self, spec: routes.FunctionSpec, function: lambda_.IFunction) -> None:
        # allow_test_invoke=False: only the deployed stage may invoke, not the console's test-invoke-stage.
        integration = apigateway.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        for path in spec.paths:
            self.rest_api.root.resource_for_path(path).add_method("ANY", integration)
