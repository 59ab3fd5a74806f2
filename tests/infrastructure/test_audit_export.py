"""The audit export: the audit table's stream, through Pipes and Firehose, to a locked-down S3 bucket."""

from __future__ import annotations

import json
from typing import Any

from agent_auth import schema
from agent_auth_infra.audit_export import EXPORT_PREFIX

from .synthesis import Synthesized


def only(synth: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synth.of_type(resource_type).items()
    return logical_id, resource


def export_bucket(synth: Synthesized) -> str:
    (logical_id,) = [
        k for k, v in synth.of_type("AWS::S3::Bucket").items() if "LoggingConfiguration" in v["Properties"]
    ]
    return logical_id


def audit_key(synth: Synthesized) -> str:
    (logical_id,) = [
        k
        for k, v in synth.of_type("AWS::KMS::Key").items()
        if v["Properties"]["KeyUsage"] == "ENCRYPT_DECRYPT"
    ]
    return logical_id


def actions_of(synth: Synthesized, role_id: str) -> dict[str, list[Any]]:
    """action -> resources, for every statement of the role's policies."""
    result: dict[str, list[Any]] = {}
    for statement in synth.statements(role_id):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            result.setdefault(action, []).extend(resources)
    return result


def test_the_pipe_exports_new_audit_records_only(synth: Synthesized) -> None:
    # Given the pipe
    _, pipe = only(synth, "AWS::Pipes::Pipe")
    props = pipe["Properties"]
    delivery_id, _ = only(synth, "AWS::KinesisFirehose::DeliveryStream")

    # Then it reads the audit table's stream, INSERTs only (TTL removals are not lost records), retries
    # until the stream drops a record, and hands the stored image to Firehose
    assert props["Source"] == {"Fn::GetAtt": [synth.table_id(schema.AUDIT), "StreamArn"]}
    stream = props["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["StartingPosition"] == "TRIM_HORIZON"
    assert stream["MaximumRetryAttempts"] == -1
    (pattern,) = props["SourceParameters"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"eventName": ["INSERT"]}
    assert props["Target"] == {"Fn::GetAtt": [delivery_id, "Arn"]}
    assert props["TargetParameters"]["InputTemplate"] == "<$.dynamodb.NewImage>"


def test_the_pipe_role_reads_the_audit_stream_and_writes_to_firehose_only(synth: Synthesized) -> None:
    _, pipe = only(synth, "AWS::Pipes::Pipe")
    role_id = pipe["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    delivery_id, _ = only(synth, "AWS::KinesisFirehose::DeliveryStream")
    stream = {"Fn::GetAtt": [synth.table_id(schema.AUDIT), "StreamArn"]}
    assert actions_of(synth, role_id) == {
        "dynamodb:DescribeStream": [stream],
        "dynamodb:GetRecords": [stream],
        "dynamodb:GetShardIterator": [stream],
        "dynamodb:ListStreams": ["*"],
        "firehose:PutRecord": [{"Fn::GetAtt": [delivery_id, "Arn"]}],
        "firehose:PutRecordBatch": [{"Fn::GetAtt": [delivery_id, "Arn"]}],
    }
    trust = synth.props(role_id)["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "pipes.amazonaws.com"}]


def test_firehose_may_write_but_never_read_or_delete_records(synth: Synthesized) -> None:
    _, delivery = only(synth, "AWS::KinesisFirehose::DeliveryStream")
    role_id = delivery["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    actions = actions_of(synth, role_id)
    assert set(actions) == {
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "logs:PutLogEvents",
    }
    assert actions["kms:Decrypt"] == [{"Fn::GetAtt": [audit_key(synth), "Arn"]}]
    assert not [a for a in actions if a.startswith("s3:Delete") or a == "s3:GetObject"]


def test_firehose_writes_gzipped_json_lines_by_day_encrypted_with_the_audit_key(synth: Synthesized) -> None:
    _, delivery = only(synth, "AWS::KinesisFirehose::DeliveryStream")
    props = delivery["Properties"]
    destination = props["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == {"Fn::GetAtt": [export_bucket(synth), "Arn"]}
    assert destination["Prefix"].startswith(EXPORT_PREFIX + "year=")
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["ProcessingConfiguration"] == {
        "Enabled": True,
        "Processors": [{"Type": "AppendDelimiterToRecord"}],
    }
    assert destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"] == {
        "Fn::GetAtt": [audit_key(synth), "Arn"]
    }
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True
    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "AWS_OWNED_CMK"


def test_the_export_bucket_is_private_encrypted_logged_and_retained(synth: Synthesized) -> None:
    # Given the export bucket
    bucket_id = export_bucket(synth)
    bucket = synth.resources[bucket_id]
    props = bucket["Properties"]

    # Then it outlives the stack, blocks public access, is encrypted with the audit key and logged
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [audit_key(synth), "Arn"]},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "ObjectLockEnabled" not in props  # an option: it can never be undone
    # And records move to Glacier Instant Retrieval, then expire after seven years
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 2557
    assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]


def test_every_bucket_refuses_requests_without_tls(synth: Synthesized) -> None:
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::S3::BucketPolicy").values()
    }
    assert set(policies) == set(synth.of_type("AWS::S3::Bucket"))
    for statements in policies.values():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_audit_key_rotates_and_is_retained(synth: Synthesized) -> None:
    key = synth.resources[audit_key(synth)]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def test_object_lock_in_compliance_mode_is_an_option(full: Synthesized) -> None:
    props = full.props(export_bucket(full))
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2557}},
    }
