"""The agent-auth stack: tables, signing key, functions and the API that fronts them, plus the outputs the
CLI reads (`agent-auth apply --stack NAME`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from constructs import Construct

from agent_auth import config, routes, schema
from agent_auth_infra.api import Api
from agent_auth_infra.functions import Functions
from agent_auth_infra.identity_provider import upstream_provider
from agent_auth_infra.nag import acknowledge
from agent_auth_infra.settings import DeploymentSettings
from agent_auth_infra.signing_key import ApprovalKey, SigningKey
from agent_auth_infra.tables import Tables


class AgentAuthStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        tables = Tables(self, "Tables")
        signing_key = SigningKey(
            self, "SigningKey", alg=settings.signing_alg, alias_prefix=settings.signing_key_alias_prefix
        )
        approval_key = ApprovalKey(self, "ApprovalKey")
        api = Api(self, "Api", cloud_watch_role=settings.api_gateway_cloud_watch_role)
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
        acknowledge(
            functions.by_spec[routes.NOTIFIER].role.node.find_child("DefaultPolicy"),  # type: ignore[union-attr]
            "AwsSolutions-IAM5[Resource::*]",
            "The stream event source needs dynamodb:ListStreams, which has no resource-level permissions; "
            "reading records is limited to the requests table's stream.",
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
