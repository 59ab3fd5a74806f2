"""Local AWS resources built from the same specs as the CDK stacks (agent_auth.schema)."""

from __future__ import annotations

from typing import Any

from agent_auth import schema
from agent_auth.adapters.kms import KMS_ALGORITHM
from agent_auth.config import INITIAL_KEY_ALIAS, KEY_SPEC, Settings


def create_table(client: Any, spec: schema.TableSpec, name: str) -> None:
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in spec.key_attributes()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sort_key, "KeyType": "RANGE"}] if index.sort_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    if spec.stream:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    client.create_table(**params)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
        )


def create_signing_key(client: Any, alg: str, alias_prefix: str = "") -> str:
    """The deployment's first signing key; with rotation, behind `<alias_prefix>/initial`, as the stack's."""
    assert alg in KMS_ALGORITHM
    key = client.create_key(
        KeySpec=KEY_SPEC[alg], KeyUsage="SIGN_VERIFY", Description="agent-auth token signing"
    )
    arn = str(key["KeyMetadata"]["Arn"])
    if alias_prefix:
        client.create_alias(AliasName=f"{alias_prefix}/{INITIAL_KEY_ALIAS}", TargetKeyId=arn)
    return arn


def create_approval_key(client: Any) -> str:
    key = client.create_key(
        KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="agent-auth approval links"
    )
    return str(key["KeyMetadata"]["Arn"])


DEV_SENDER = "agent-auth@example.com"


def create_resources(
    dynamodb: Any,
    kms: Any,
    *,
    issuer: str,
    region: str,
    alg: str = "RS256",
    prefix: str = "agent-auth-dev",
    ses: Any = None,
    key_alias_prefix: str = "",
) -> Settings:
    """`key_alias_prefix`: signing keys rotate (`agent-auth keys rotate --dev`), behind aliases under it."""
    names = {spec.logical_name: f"{prefix}-{spec.logical_name}" for spec in schema.ALL_TABLES}
    for spec in schema.ALL_TABLES:
        create_table(dynamodb, spec, names[spec.logical_name])
    if ses is not None:
        ses.verify_email_identity(EmailAddress=DEV_SENDER)  # SES sends only from verified identities
    return Settings(
        issuer=issuer,
        region=region,
        agents_table=names[schema.AGENTS.logical_name],
        replay_table=names[schema.REPLAY.logical_name],
        audit_table=names[schema.AUDIT.logical_name],
        requests_table=names[schema.REQUESTS.logical_name],
        grants_table=names[schema.GRANTS.logical_name],
        signins_table=names[schema.SIGN_INS.logical_name],
        codes_table=names[schema.CODES.logical_name],
        refresh_table=names[schema.REFRESH.logical_name],
        consents_table=names[schema.CONSENTS.logical_name],
        throttle_table=names[schema.THROTTLE.logical_name],
        revocations_table=names[schema.REVOCATIONS.logical_name],
        signing_key_arn=create_signing_key(kms, alg, key_alias_prefix),
        signing_alg=alg,
        signing_key_alias_prefix=key_alias_prefix,
        approval_key_arn=create_approval_key(kms),
        mail_from=DEV_SENDER,
    )
