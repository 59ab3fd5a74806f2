"""One Lambda function per agent_auth.routes.FunctionSpec, each with its own least-privilege role.

The roles are written out statement by statement instead of with `grant*` helpers: the helpers grant more
than the code calls (grant_read_data adds Query, Scan and BatchGetItem; grant_sign_verify adds kms:Verify).
ACCESS below lists exactly the calls agent_auth.adapters makes for each function, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from agent_auth import routes, schema
from agent_auth.grant_catalog import token_table_access
from agent_auth.signing_keys import KEY_SET_ITEM
from agent_auth_infra.bundling import ARCHITECTURE, RUNTIME, lambda_code
from agent_auth_infra.nag import acknowledge
from agent_auth_infra.signing_key import ApprovalKey, SigningKey
from agent_auth_infra.tables import Tables

TIMEOUT = Duration.seconds(10)
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "agent-auth",
    # Events carry client secrets, assertions and tokens: never logged, never traced.
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}


@dataclass(frozen=True)
class Access:
    tables: Mapping[schema.TableSpec, tuple[str, ...]] = field(default_factory=dict)
    current_key: tuple[str, ...] = ()
    previous_keys: tuple[str, ...] = ()
    """On keys that signed earlier tokens (context previousSigningKeyArns), for the rotation overlap."""
    approval_key: tuple[str, ...] = ()
    """On the HMAC key of approval links."""
    send_email: bool = False
    """ses:SendEmail from the configured sender identity (context mailFrom)."""
    upstream_secret: tuple[str, ...] = ()
    """On the Secrets Manager secret holding the upstream provider's client secret."""
    rotating_keys: tuple[str, ...] = ()
    """With key rotation: on the keys behind the stack's alias prefix (kms:ResourceAliases), which
    `agent-auth keys rotate` creates after the deploy."""
    key_set_item: tuple[str, ...] = ()
    """With key rotation: on the key set's one item of the agents table (dynamodb:LeadingKeys)."""


# What every agent-facing endpoint needs to authenticate a client and audit the decision:
# AgentTable.get_client, ReplayTable.remember_once (private_key_jwt) and AuditTable.write; on a failed
# authentication ThrottleTable's counters and decoy, and AgentTable.lock (too many failures).
_CLIENT_ENDPOINT = {
    schema.AGENTS: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    schema.REPLAY: ("dynamodb:PutItem",),
    schema.AUDIT: ("dynamodb:PutItem",),
    schema.THROTTLE: ("dynamodb:UpdateItem",),
}

_TABLES_BY_NAME = {spec.logical_name: spec for spec in schema.ALL_TABLES}


def _union(
    *parts: Mapping[schema.TableSpec, tuple[str, ...]],
) -> dict[schema.TableSpec, tuple[str, ...]]:
    """Table -> actions, each table's actions the union over the parts (a grant type that reads a table
    the client endpoint also uses adds to its actions instead of replacing them)."""
    merged: dict[schema.TableSpec, tuple[str, ...]] = {}
    for part in parts:
        for table, actions in part.items():
            merged[table] = tuple(sorted({*merged.get(table, ()), *actions}))
    return merged


ACCESS: Mapping[routes.FunctionSpec, Access] = {
    # adapters.kms: KmsSigner.sign (only this function may sign); each grant type of the catalog
    # declares the table actions its stores call (agent_auth.grant_catalog).
    routes.TOKEN: Access(
        tables=_union(
            _CLIENT_ENDPOINT,
            {_TABLES_BY_NAME[name]: actions for name, actions in token_table_access().items()},
        ),
        current_key=("kms:Sign",),
        # adapters.kms.RotatingKmsSigner; the key set itself is read with the agents table's GetItem.
        rotating_keys=("kms:Sign",),
    ),
    # RequestTable.put and GrantTable.put: the request, and for auto-approval its grant, in one transaction.
    routes.ACCESS_REQUESTS: Access(
        tables={
            **_CLIENT_ENDPOINT,
            schema.REQUESTS: ("dynamodb:PutItem",),
            schema.GRANTS: ("dynamodb:PutItem",),
        },
    ),
    # ApprovalService: RequestTable.get_request / decision (update + grant + audit in one transaction),
    # AgentTable.approver_group, KmsMac.verify_mac, and for groups with `sign_in: true` the approver's
    # session (SignInTable.get_session: read only). Only this function may verify links and decide.
    routes.APPROVALS: Access(
        tables={
            schema.REQUESTS: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
            schema.GRANTS: ("dynamodb:PutItem",),
            schema.AGENTS: ("dynamodb:GetItem",),
            schema.AUDIT: ("dynamodb:PutItem",),
            schema.SIGN_INS: ("dynamodb:GetItem",),
            # ThrottledLinks: a source's bad links are counted (UpdateItem) and checked (GetItem).
            schema.THROTTLE: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        },
        approval_key=("kms:VerifyMac",),
    ),
    # Notifier: AgentTable.group_members, KmsMac.generate_mac, SesMailer.send, AuditTable.write. Only this
    # function may sign links and send email. Reading the stream is granted by its event source.
    routes.NOTIFIER: Access(
        tables={schema.AGENTS: ("dynamodb:GetItem",), schema.AUDIT: ("dynamodb:PutItem",)},
        approval_key=("kms:GenerateMac",),
        send_email=True,
    ),
    # AuthorizationFlow: AgentTable.get_client / get_users; SignInTable (sign-ins and sessions: put,
    # get, complete, consume); CodeTable.put_code and ConsentTable.get/put_consent in the decision's
    # transaction; the audit record.
    routes.AUTHORIZE: Access(
        tables={
            schema.AGENTS: ("dynamodb:GetItem",),
            schema.SIGN_INS: (
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ),
            schema.CODES: ("dynamodb:PutItem",),
            schema.CONSENTS: ("dynamodb:GetItem", "dynamodb:PutItem"),
            schema.AUDIT: ("dynamodb:PutItem",),
        },
        # adapters.secrets.SecretString: the client secret, once per execution environment. Only this
        # function may read it.
        upstream_secret=("secretsmanager:GetSecretValue",),
    ),
    # Introspection and revocation: the client endpoint's calls; KmsPublicKeys.jwks to verify our own
    # tokens (current and previous keys, never kms:Verify); RevocationLookup.status, one BatchGetItem
    # over revocation records, agent items and JIT grants; RevocationOperation: RefreshTable.get_family,
    # then RefreshTable.revoke_family and RevocationTable's record in one transaction.
    routes.LIFECYCLE: Access(
        tables={
            **_CLIENT_ENDPOINT,
            schema.AGENTS: ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
            schema.REVOCATIONS: ("dynamodb:BatchGetItem", "dynamodb:PutItem"),
            schema.GRANTS: ("dynamodb:BatchGetItem",),
            schema.REFRESH: ("dynamodb:GetItem", "dynamodb:UpdateItem"),
        },
        current_key=("kms:GetPublicKey",),
        previous_keys=("kms:GetPublicKey",),
        # With rotation, wiring.public_keys reads the key set (the agents table's GetItem above) and
        # verifies tokens of every published key: without this, a rotated key's tokens would not introspect.
        rotating_keys=("kms:GetPublicKey",),
    ),
    # adapters.kms: KmsPublicKeys.jwks, for the current key and every previous one it publishes.
    # With rotation, adapters.key_set_table.KeySetTable.get_key_set and the public key of each key it names.
    routes.WELL_KNOWN: Access(
        current_key=("kms:GetPublicKey",),
        previous_keys=("kms:GetPublicKey",),
        rotating_keys=("kms:GetPublicKey",),
        key_set_item=("dynamodb:GetItem",),
    ),
}


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: Mapping[str, str],
        tables: Tables,
        signing_key: SigningKey,
        approval_key: ApprovalKey,
        mail_from: str,
        previous_key_arns: tuple[str, ...],
        upstream_secret: secretsmanager.ISecret,
        memory_size: int,
        log_retention: logs.RetentionDays = LOG_RETENTION,
        reserved_concurrency: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        code = lambda_code()
        self.by_spec: dict[routes.FunctionSpec, lambda_.Function] = {}
        for spec in routes.ALL_FUNCTIONS:
            if spec not in ACCESS:
                raise KeyError(f"function {spec.name!r} has no entry in ACCESS: declare what it may call")
            access = ACCESS[spec]
            scope_ = Construct(self, spec.name)
            log_group = logs.LogGroup(scope_, "Logs", retention=log_retention)
            statements = [
                # Only its own, pre-created log group: no logs:CreateLogGroup, no other function's logs.
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                ),
                *(
                    iam.PolicyStatement(actions=list(actions), resources=[tables[table].table_arn])
                    for table, actions in access.tables.items()
                ),
            ]
            if access.current_key:
                statements.append(
                    iam.PolicyStatement(actions=list(access.current_key), resources=[signing_key.key_arn])
                )
            if access.approval_key:
                statements.append(
                    iam.PolicyStatement(actions=list(access.approval_key), resources=[approval_key.key_arn])
                )
            if access.send_email:
                stack = Stack.of(self)
                domain = mail_from.rpartition("@")[2]
                statements.append(
                    iam.PolicyStatement(
                        actions=["ses:SendEmail"],
                        # SES checks the sender's identity: the address, or the domain it belongs to.
                        resources=[
                            stack.format_arn(service="ses", resource="identity", resource_name=mail_from),
                            stack.format_arn(service="ses", resource="identity", resource_name=domain),
                        ],
                    )
                )
            if access.upstream_secret:
                # The secret is encrypted with Secrets Manager's AWS managed key, which Secrets Manager
                # uses on the caller's behalf: no kms:Decrypt is granted (docs/identity-providers.md).
                statements.append(
                    iam.PolicyStatement(
                        actions=list(access.upstream_secret), resources=[upstream_secret.secret_arn]
                    )
                )
            if signing_key.alias_prefix:
                statements += _rotation_statements(access, signing_key, tables)
            if access.previous_keys and previous_key_arns:
                statements.append(
                    iam.PolicyStatement(actions=list(access.previous_keys), resources=list(previous_key_arns))
                )
            role = iam.Role(
                scope_,
                "Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"agent-auth {spec.name} function: only the calls its code makes",
                inline_policies={"least-privilege": iam.PolicyDocument(statements=statements)},
            )
            if signing_key.alias_prefix and access.rotating_keys:
                acknowledge(
                    role,
                    f"AwsSolutions-IAM5[Resource::{ROTATING_KEYS_FINDING}]",
                    "Keys made by `agent-auth keys rotate` after the deploy have ARNs unknown now: the "
                    "statement allows only keys behind this stack's signing alias prefix "
                    "(kms:ResourceAliases), in this account and region.",
                )
            self.by_spec[spec] = lambda_.Function(
                scope_,
                "Function",
                description=f"agent-auth {spec.name}: {', '.join(spec.paths) or 'access-requests stream'}",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=spec.handler,
                code=code,
                memory_size=memory_size,
                timeout=TIMEOUT,
                role=role,
                log_group=log_group,
                environment={**environment, **POWERTOOLS_ENV},
                reserved_concurrent_executions=(reserved_concurrency or {}).get(spec.name),
                # X-Ray segments of each invocation (timing and errors, never a payload: no Powertools
                # Tracer captures responses here, and POWERTOOLS_TRACER_CAPTURE_RESPONSE stays false).
                tracing=lambda_.Tracing.ACTIVE,
            )
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5[Resource::*]",
                "Active tracing adds xray:PutTraceSegments and xray:PutTelemetryRecords, which have no "
                "resource-level permissions. The notifier's policy also holds its stream event source's "
                "dynamodb:ListStreams (no resource-level permissions either); reading records stays "
                "limited to the requests table's stream.",
            )
            acknowledge(
                self.by_spec[spec],
                "AwsSolutions-L1",
                f"The bundle is built and tested for {RUNTIME.name} (pip --python-version, pinned wheels in "
                "functions/requirements.txt); a newer runtime is a deliberate change of bundling.RUNTIME.",
            )


ROTATING_KEYS_FINDING = "arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*"


def _rotation_statements(
    access: Access, signing_key: SigningKey, tables: Tables
) -> list[iam.PolicyStatement]:
    """Keys rotate without a redeploy: the keys are named by their alias (kms:ResourceAliases, ABAC), and
    the well-known function reads the key set's one item (dynamodb:LeadingKeys), nothing else of the table."""
    statements = []
    if access.rotating_keys:
        stack = Stack.of(signing_key)
        statements.append(
            iam.PolicyStatement(
                actions=list(access.rotating_keys),
                resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
                conditions={"ForAnyValue:StringLike": {"kms:ResourceAliases": signing_key.alias_pattern}},
            )
        )
    if access.key_set_item:
        statements.append(
            iam.PolicyStatement(
                actions=list(access.key_set_item),
                resources=[tables[schema.AGENTS].table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [KEY_SET_ITEM]}},
            )
        )
    return statements
