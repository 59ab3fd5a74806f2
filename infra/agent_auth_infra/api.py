"""The REST API: every path of agent_auth.routes, any method, proxied to its function.

ANY reaches the function for every method, so the function itself answers 405 (with `Allow`) and audits
it. Throttling is set per stage and, tighter, per route (ROUTE_THROTTLES). Access logs name the request,
the caller's address and the outcome, but never a body, a query string or a header: those carry secrets.

The issuer. On API Gateway's own host every path starts with the stage, so the issuer is
https://HOST/STAGE, and the discovery URLs RFC 8414 §3.1 builds by inserting the well-known path before
the issuer's path (https://HOST/.well-known/oauth-authorization-server/STAGE) cannot reach the API at
all: API Gateway answers them 403 itself. MCP clients then try OpenID Connect Discovery by appending
(https://HOST/STAGE/.well-known/openid-configuration), which the wellknown function serves
(tests/infrastructure/test_discovery.py follows the official SDK's list). With a custom domain
(context domainName) the API is mapped at the domain's root and the issuer is https://DOMAIN, without a
path, so the first URL every client tries is served; the execute-api endpoint is then switched off, so
the issuer has one spelling.

An optional WAF web ACL (context waf) adds rate-based rules per source address, in front of the stage's
throttle (which is shared by every caller).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_wafv2 as wafv2
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
ROUTE_THROTTLES = {
    routes.TOKEN: Throttle(rate=50, burst=100),
    routes.ACCESS_REQUESTS: Throttle(rate=5, burst=10),
    routes.APPROVALS: Throttle(rate=10, burst=20),
    routes.AUTHORIZE: Throttle(rate=20, burst=40),
}
"""Tighter limits per route. The token endpoint costs a KMS call and DynamoDB writes on every request;
an access request sends approvers email (SES's sending rate is the limit there); approval and sign-in
pages are opened by people, a few a minute. Discovery and the JWKS are cached by clients (max-age)
and share the stage's limit."""

WAF_RATE_PER_IP = 1000
"""Requests per source address per five minutes, any path: about 3 a second, well above one client."""
WAF_TOKEN_RATE_PER_IP = 300
"""The same for /token: one token a second per address is far above what a client with a cached
token asks, and far below what guessing secrets needs."""

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


@dataclass(frozen=True)
class CustomDomain:
    name: str
    certificate_arn: str
    hosted_zone_id: str = ""
    """When set, an alias record for `name` is added to this Route 53 zone."""


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cloud_watch_role: bool,
        stage: str = STAGE_NAME,
        domain: CustomDomain | None = None,
        waf: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage_name = stage
        self.domain = domain
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
            # With a custom domain, the issuer is that domain: the execute-api URL would be a second one.
            disable_execute_api_endpoint=domain is not None,
            deploy_options=apigateway.StageOptions(
                stage_name=stage,
                throttling_rate_limit=STAGE_THROTTLE.rate,
                throttling_burst_limit=STAGE_THROTTLE.burst,
                logging_level=METHOD_LOGGING_LEVEL,
                data_trace_enabled=False,  # would log full requests and responses: secrets and tokens
                metrics_enabled=True,
                tracing_enabled=True,  # X-Ray: timing per stage and integration, no bodies
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
        if domain is not None:
            self._custom_domain(domain)
        self.web_acl = self._web_acl() if waf else None
        self._acknowledge_findings(waf=waf)

    def _custom_domain(self, domain: CustomDomain) -> None:
        name = apigateway.DomainName(
            self,
            "Domain",
            domain_name=domain.name,
            certificate=acm.Certificate.from_certificate_arn(self, "Certificate", domain.certificate_arn),
            endpoint_type=apigateway.EndpointType.REGIONAL,
            security_policy=apigateway.SecurityPolicy.TLS_1_2,
        )
        # At the root (no base path): the functions see the same paths as on execute-api.
        name.add_base_path_mapping(self.rest_api, stage=self.rest_api.deployment_stage)
        if domain.hosted_zone_id:
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=domain.hosted_zone_id, zone_name=domain.name
            )
            route53.ARecord(
                self,
                "Alias",
                zone=zone,
                record_name=f"{domain.name}.",
                target=route53.RecordTarget.from_alias(targets.ApiGatewayDomain(name)),
            )

    def _web_acl(self) -> wafv2.CfnWebACL:
        def rule(
            name: str, priority: int, limit: int, path_suffix: str | None
        ) -> wafv2.CfnWebACL.RuleProperty:
            scope_down = (
                wafv2.CfnWebACL.StatementProperty(
                    byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                        positional_constraint="ENDS_WITH",
                        search_string=path_suffix,
                        text_transformations=[
                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                        ],
                    )
                )
                if path_suffix
                else None
            )
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        # The address the connection came from: a forwarded-for header is the client's word.
                        aggregate_key_type="IP",
                        limit=limit,
                        evaluation_window_sec=300,
                        scope_down_statement=scope_down,
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            description="agent-auth: requests per source address",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("agent-auth"),
            rules=[
                rule("token-per-ip", 0, WAF_TOKEN_RATE_PER_IP, routes.TOKEN.paths[0]),
                rule("any-per-ip", 1, WAF_RATE_PER_IP, None),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        return acl

    def _acknowledge_findings(self, *, waf: bool) -> None:
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
        if not waf:
            acknowledge(
                self.rest_api.deployment_stage,
                "AwsSolutions-APIG3",
                "A WAF web ACL is optional (context waf: it costs per ACL, rule and request, and many "
                "accounts share one); the stage is throttled per stage and per route, and failed client "
                "authentications are slowed per client and source address by the functions.",
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
        """The custom domain, or the stage's base URL, built from the RestApi itself rather than its
        deployment or stage, so a function can name it without a dependency cycle (the stage depends on
        the functions' methods)."""
        if self.domain is not None:
            return f"https://{self.domain.name}"
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
                f"/{self.stage_name}",
            ],
        )

    def route(self, spec: routes.FunctionSpec, function: lambda_.IFunction) -> None:
        # allow_test_invoke=False: only the deployed stage may invoke, not the console's test-invoke-stage.
        integration = apigateway.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        for path in spec.paths:
            self.rest_api.root.resource_for_path(path).add_method("ANY", integration)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
