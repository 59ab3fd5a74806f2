"""The DynamoDB tables, one per agent_auth.schema.TableSpec: AWS and the development server cannot drift."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from agent_auth import schema

RETAINED = frozenset({schema.AGENTS, schema.AUDIT})
"""The applied policy and the audit trail outlive the stack; replay markers are short-lived and disposable."""


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self._tables: dict[schema.TableSpec, dynamodb.Table] = {
            spec: self._table(spec) for spec in schema.ALL_TABLES
        }

    def __getitem__(self, spec: schema.TableSpec) -> dynamodb.Table:
        return self._tables[spec]

    def items(self) -> list[tuple[schema.TableSpec, dynamodb.Table]]:
        return list(self._tables.items())

    def _table(self, spec: schema.TableSpec) -> dynamodb.Table:
        retained = spec in RETAINED
        table = dynamodb.Table(
            self,
            spec.logical_name.capitalize(),
            # The schema's keys are all strings (prefixed ids, ISO-8601 times, days).
            partition_key=_string(spec.partition_key),
            sort_key=_string(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # TTL only cleans up; the code compares every expiry with its clock on read.
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType.NEW_IMAGE if spec.stream else None,
            removal_policy=RemovalPolicy.RETAIN if retained else RemovalPolicy.DESTROY,
            deletion_protection=retained,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)
