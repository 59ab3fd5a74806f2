"""The agent-auth stack: tables, keys, functions, the API, the audit export and monitoring, plus the outputs
the CLI reads (`agent-auth apply --stack NAME`).

One stack, one construct per concern (Tables, SigningKey and ApprovalKey, Api, Functions, AuditExport,
Monitoring) rather than a stack per concern, because:
- Across stacks every reference is a CloudFormation export, and an exported value cannot change while
  another stack imports it: a table replaced because schema.py changed its keys, or a new table every
  function must be told about, would need a two-step deploy instead of flowing through as it does here.
- The API and the functions refer to each other (the functions are told the issuer, built from the API;
  the API's methods integrate the functions; Cognito's callback URL names the issuer), which splits
  into stacks only through a cycle or hand-made parameters.
- The CLI finds every table, the issuer and the key from one stack's outputs (`--stack NAME`).
The template stays far from CloudFormation's limits (`make synth` prints its size and resource count).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct

from agent_auth import config, outcome_metrics, routes, schema
from agent_auth_infra.api import Api, CustomDomain
from agent_auth_infra.audit_export import AuditExport, AuditKey
from agent_auth_infra.functions import Functions
from agent_auth_infra.identity_provider import upstream_provider
from agent_auth_infra.monitoring import Monitoring, metrics_namespace
from agent_auth_infra.settings import DeploymentSettings, log_retention
from agent_auth_infra.signing_key import ApprovalKey, SigningKey
from agent_auth_infra.tables import Tables


class AgentAuthStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        audit_key = AuditKey(self, "AuditKey")
        tables = Tables(self, "Tables")
        audit_export = AuditExport(
            self,
            "AuditExport",
            table=tables[schema.AUDIT],
            key=audit_key.key,
            retention_days=settings.audit_export_days,
            object_lock=settings.audit_object_lock,
        )
        signing_key = SigningKey(
            self, "SigningKey", alg=settings.signing_alg, alias_prefix=settings.signing_key_alias_prefix
        )
        approval_key = ApprovalKey(self, "ApprovalKey")
        api = Api(
            self,
            "Api",
            cloud_watch_role=settings.api_gateway_cloud_watch_role,
            stage=settings.stage,
            domain=(
                CustomDomain(settings.domain_name, settings.certificate_arn, settings.hosted_zone_id)
                if settings.domain_name
                else None
            ),
            waf=settings.waf,
        )
        upstream = upstream_provider(self, settings, api.issuer)

        # The very settings the functions read back with config.Settings.from_env. A table's setting is
        # named like its variable (agents_table <-> AGENTS_TABLE), so a table config starts to read is
        # passed without a change here; a new required setting that is not a table stops the synth.
        setting_names = {f.name for f in dataclasses.fields(config.Settings)}
        table_settings: dict[str, Any] = {
            spec.env_var.lower(): table.table_name
            for spec, table in tables.items()
            if spec.env_var.lower() in setting_names
        }
        function_settings = config.Settings(
            issuer=api.issuer,
            region=self.region,
            **table_settings,
            signing_key_arn=signing_key.key_arn,
            signing_alg=settings.signing_alg,
            previous_signing_key_arns=settings.previous_signing_key_arns,
            signing_key_alias_prefix=settings.signing_key_alias_prefix,
            token_lifetime=settings.token_lifetime_seconds,
            audit_retention_days=settings.audit_retention_days,
            approval_key_arn=approval_key.key_arn,
            mail_from=settings.mail_from,
            upstream_issuer=upstream.issuer,
            upstream_client_id=upstream.client_id,
            upstream_client_secret_arn=upstream.client_secret.secret_arn,
            upstream_groups_claim=upstream.groups_claim,
        )
        environment = function_settings.to_env()
        del environment["AWS_REGION"]  # reserved: Lambda sets it
        # Where the functions' audit-derived counts go (adapters.audit_metrics), and the alarms look.
        namespace = metrics_namespace(self.stack_name)
        environment[outcome_metrics.NAMESPACE_ENV] = namespace
        # The client secret only ever comes from Secrets Manager (UPSTREAM_CLIENT_SECRET_ARN) on AWS.
        assert "UPSTREAM_CLIENT_SECRET" not in environment
        functions = Functions(
            self,
            "Functions",
            environment=environment,
            tables=tables,
            signing_key=signing_key,
            approval_key=approval_key,
            mail_from=settings.mail_from,
            previous_key_arns=settings.previous_signing_key_arns,
            upstream_secret=upstream.client_secret,
            memory_size=settings.lambda_memory_size,
            log_retention=log_retention(settings.log_retention_days),
            reserved_concurrency=dict(settings.reserved_concurrency),
        )
        for spec in routes.FUNCTIONS:
            api.route(spec, functions.by_spec[spec])
        # New pending requests reach the notifier through the requests table's stream, INSERTs only.
        functions.by_spec[routes.NOTIFIER].add_event_source(
            event_sources.DynamoEventSource(
                tables[schema.REQUESTS],
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=10,
                retry_attempts=3,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})],
            )
        )

        Monitoring(
            self,
            "Monitoring",
            functions=functions.by_spec,
            rest_api=api.rest_api,
            namespace=namespace,
            alarm_email=settings.alarm_email,
            export_stream_name=audit_export.delivery_stream.ref,
            export_pipe_name=audit_export.pipe.ref,
        )

        # Created directly in the stack so that each output's key is exactly the schema's name.
        for table_spec, table in tables.items():
            CfnOutput(self, table_spec.output_key, value=table.table_name, description=table_spec.env_var)
        CfnOutput(self, schema.ISSUER_OUTPUT, value=api.issuer, description="ISSUER: the API's base URL")
        CfnOutput(self, schema.SIGNING_KEY_OUTPUT, value=signing_key.key_arn, description="SIGNING_KEY_ARN")
        CfnOutput(self, schema.SIGNING_ALG_OUTPUT, value=settings.signing_alg, description="SIGNING_ALG")
        if settings.signing_key_rotation:
            # What `agent-auth keys rotate --stack` needs: where its keys go, and how long their tokens live.
            CfnOutput(
                self,
                schema.SIGNING_KEY_ALIAS_OUTPUT,
                value=settings.signing_key_alias_prefix,
                description="SIGNING_KEY_ALIAS_PREFIX",
            )
            CfnOutput(
                self,
                schema.TOKEN_LIFETIME_OUTPUT,
                value=str(settings.token_lifetime_seconds),
                description="TOKEN_LIFETIME_SECONDS",
            )
