"""The audit trail's long-term copy: the audit table's stream, through EventBridge Pipes and Firehose, to S3.

The table keeps records for auditRetentionDays (TTL cleans up); the bucket keeps every record for
auditExportDays (seven years by default), as gzipped JSON lines partitioned by day, for Athena
(docs/deploy.md has the table definition and a query). No Lambda function is involved: Pipes reads the
stream (INSERTs only: TTL expiry removes items, which must not look like lost records) and hands each new
image to Firehose, which batches, adds a newline after each record and writes to S3.

Encryption. The export is kept for years and read by people (Athena), so it is encrypted with a customer
managed key (AuditKey): reading it takes kms:Decrypt on that key as well as S3 access, every use is in
CloudTrail, and disabling the key stops all reads at once. The table stays on DynamoDB's AWS managed key
(also KMS, also in CloudTrail) for now: DynamoDB uses a customer key with each caller's own permissions,
so one there would add KMS actions to the five function roles that write the trail (a change to their
reviewed least-privilege policies), for a copy that lasts only auditRetentionDays. Deleting the stack
keeps the key, the table and the bucket.

With context auditObjectLock the bucket is created with S3 Object Lock in compliance mode: no one, the
account's root user included, can delete or overwrite a record before its retention ends (this cannot
be turned off, and is chosen when the bucket is created).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from constructs import Construct

from agent_auth_infra.nag import acknowledge

EXPORT_PREFIX = "audit/"
PARTITIONS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
"""Hive-style partitions by the day Firehose wrote the batch (UTC): Athena prunes by them."""
ERROR_PREFIX = "errors/!{firehose:error-output-type}/" + PARTITIONS
INFREQUENT_AFTER = Duration.days(90)
"""Older records are rarely read: Glacier Instant Retrieval, still queryable by Athena."""
BUFFER_INTERVAL = Duration.minutes(5)
ACCESS_LOG_DAYS = 365


class AuditKey(Construct):
    """The customer managed key of the exported trail, rotated yearly by KMS. Its policy delegates to IAM
    only: Firehose's role may encrypt with it, and a person reading the files needs kms:Decrypt on it in
    their own policy besides s3:GetObject, so a broad S3 read grant alone never reveals the trail."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="agent-auth audit trail: its S3 export",
            key_usage=kms.KeyUsage.ENCRYPT_DECRYPT,
            enable_key_rotation=True,
            # Without the key, every exported record is unreadable.
            removal_policy=RemovalPolicy.RETAIN,
        )


class AuditExport(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.Table,
        key: kms.IKey,
        retention_days: int,
        object_lock: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if table.table_stream_arn is None:
            raise ValueError("the audit table needs a stream (schema.AUDIT.stream) to be exported")
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access logging cannot write SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not one per object
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            object_lock_enabled=object_lock or None,
            object_lock_default_retention=(
                s3.ObjectLockRetention.compliance(Duration.days(retention_days)) if object_lock else None
            ),
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="audit-export/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="infrequent-then-expire",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                            transition_after=INFREQUENT_AFTER,
                        )
                    ],
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.delivery_logs = logs.LogGroup(self, "DeliveryLogs", retention=logs.RetentionDays.THREE_MONTHS)
        delivery_log_stream = self.delivery_logs.add_stream("S3Delivery")
        self.firehose_role = iam.Role(
            self,
            "FirehoseRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="agent-auth audit export: Firehose writes to the export bucket only",
            inline_policies={
                "deliver": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "s3:GetBucketLocation",
                                "s3:ListBucket",
                                "s3:ListBucketMultipartUploads",
                            ],
                            resources=[self.bucket.bucket_arn],
                        ),
                        # Writes only: Firehose never reads, deletes or overwrites a record.
                        iam.PolicyStatement(
                            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                            resources=[self.bucket.arn_for_objects("*")],
                        ),
                        iam.PolicyStatement(
                            actions=["kms:GenerateDataKey", "kms:Decrypt"],
                            resources=[key.key_arn],
                        ),
                        iam.PolicyStatement(
                            actions=["logs:PutLogEvents"],
                            resources=[
                                Stack.of(self).format_arn(
                                    service="logs",
                                    resource="log-group",
                                    resource_name=(
                                        f"{self.delivery_logs.log_group_name}:log-stream:"
                                        f"{delivery_log_stream.log_stream_name}"
                                    ),
                                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                )
                            ],
                        ),
                    ]
                )
            },
        )
        bucket_id = Stack.of(self).resolve(self.bucket.node.default_child.logical_id)  # type: ignore[union-attr]
        acknowledge(
            self.firehose_role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/*]",
            "Firehose names each object when it writes it (prefix, date and a random suffix), so the "
            "write permission covers the bucket's objects; it is PutObject and AbortMultipartUpload only.",
        )
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    # Firehose's own buffer (at most a day): its AWS owned key; the files use AuditKey.
                    key_type="AWS_OWNED_CMK"
                )
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=self.firehose_role.role_arn,
                prefix=EXPORT_PREFIX + PARTITIONS,
                error_output_prefix=ERROR_PREFIX,
                compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=int(BUFFER_INTERVAL.to_seconds()), size_in_m_bs=5
                ),
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn
                    )
                ),
                # One JSON object per line, as Athena's JSON SerDe reads them.
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[firehose.CfnDeliveryStream.ProcessorProperty(type="AppendDelimiterToRecord")],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_logs.log_group_name,
                    log_stream_name=delivery_log_stream.log_stream_name,
                ),
            ),
        )
        self._pipe(table, table.table_stream_arn, key)

    def _pipe(self, table: dynamodb.Table, stream_arn: str, key: kms.IKey) -> None:
        role = iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal(
                "pipes.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="agent-auth audit export: the pipe reads the audit stream and feeds Firehose",
            inline_policies={
                "export": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "dynamodb:DescribeStream",
                                "dynamodb:GetRecords",
                                "dynamodb:GetShardIterator",
                            ],
                            resources=[stream_arn],
                        ),
                        iam.PolicyStatement(actions=["dynamodb:ListStreams"], resources=["*"]),
                        iam.PolicyStatement(
                            actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                            resources=[self.delivery_stream.attr_arn],
                        ),
                    ]
                )
            },
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams has no resource-level permissions; reading records is limited to the "
            "audit table's stream.",
        )
        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            description="agent-auth: new audit records to the S3 export",
            role_arn=role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=100,
                    maximum_batching_window_in_seconds=60,
                    # Retried until the stream itself drops the record (24 hours): nothing is skipped
                    # while Firehose is briefly unavailable.
                    maximum_retry_attempts=-1,
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern='{"eventName": ["INSERT"]}')]
                ),
            ),
            target=self.delivery_stream.attr_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                # The record as stored (DynamoDB JSON: {"action": {"S": "token.issue"}, ...}).
                input_template="<$.dynamodb.NewImage>"
            ),
        )
