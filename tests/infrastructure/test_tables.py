"""The DynamoDB tables match agent_auth.schema exactly, and keep their data safe."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from agent_auth import routes, schema

from .synthesis import Synthesized

RETAINED = (schema.AGENTS, schema.AUDIT)


@pytest.fixture(scope="module")
def template(synth: Synthesized) -> Template:
    return Template.from_json(synth.template)


def key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        keys.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return keys


def test_one_table_per_schema_spec(template: Template) -> None:
    # Given the synthesized stack / Then it holds exactly the tables of schema.ALL_TABLES
    template.resource_count_is("AWS::DynamoDB::Table", len(schema.ALL_TABLES))


@pytest.mark.parametrize("spec", schema.ALL_TABLES, ids=lambda s: s.logical_name)
def test_table_keys_and_indexes_come_from_the_schema(synth: Synthesized, spec: schema.TableSpec) -> None:
    # Given the table the stack outputs under the schema's output key
    props = synth.props(synth.table_id(spec))

    # Then its keys, attribute definitions and indexes are the schema's
    assert props["KeySchema"] == key_schema(spec.partition_key, spec.sort_key)
    defined = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert defined == dict.fromkeys(spec.key_attributes(), "S")
    indexes = {
        index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
        for index in props.get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {
        index.name: (key_schema(index.partition_key, index.sort_key), "ALL") for index in spec.indexes
    }


@pytest.mark.parametrize("spec", schema.ALL_TABLES, ids=lambda s: s.logical_name)
def test_table_ttl_and_recovery(synth: Synthesized, spec: schema.TableSpec) -> None:
    # Given the table for this spec
    props = synth.props(synth.table_id(spec))

    # Then TTL uses the schema's attribute (or is off), and recovery, encryption and on-demand are on
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("spec", schema.ALL_TABLES, ids=lambda s: s.logical_name)
def test_streams_only_where_the_schema_asks(synth: Synthesized, spec: schema.TableSpec) -> None:
    # Given the table / Then it streams new images exactly when its spec says so (the notifier reads them)
    stream = synth.props(synth.table_id(spec)).get("StreamSpecification")
    assert stream == ({"StreamViewType": "NEW_IMAGE"} if getattr(spec, "stream", False) else None)


@pytest.mark.parametrize("spec", RETAINED, ids=lambda s: s.logical_name)
def test_policy_and_audit_tables_outlive_the_stack(synth: Synthesized, spec: schema.TableSpec) -> None:
    # Given the agents or the audit table
    resource = synth.resources[synth.table_id(spec)]

    # Then deleting or replacing the stack keeps it, and it cannot be deleted by accident
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    assert resource["Properties"]["DeletionProtectionEnabled"] is True


def test_tables_are_found_through_the_assertions_api(template: Template) -> None:
    # Given the audit table's distinctive index / Then the assertions API finds it with its TTL (a cross-check
    # of the dictionary-based tests above through CDK's own matcher)
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TimeToLiveSpecification": {"AttributeName": schema.AUDIT.ttl_attribute, "Enabled": True},
            "GlobalSecondaryIndexes": Match.array_with(
                [Match.object_like({"IndexName": schema.AUDIT.indexes[0].name})]
            ),
        },
    )


@pytest.mark.parametrize(
    ("spec", "sort_key", "ttl"),
    [
        (schema.SIGN_INS, None, "expires_at"),
        (schema.CODES, None, "purge_at"),
        (schema.REFRESH, None, "expires_at"),
        (schema.CONSENTS, "sk", None),
    ],
    ids=lambda s: s.logical_name if isinstance(s, schema.TableSpec) else str(s),
)
def test_delegation_tables_exist_and_expire_what_expires(
    synth: Synthesized, spec: schema.TableSpec, sort_key: str | None, ttl: str | None
) -> None:
    # Given the tables of delegated access (sign-ins and sessions, codes, refresh families, consents)
    props = synth.props(synth.table_id(spec))

    # Then each is keyed as its adapter expects, and everything that expires has TTL on its expiry
    # (codes on a purge time a day later, so a reused code is still recognised); consents never expire
    assert props["KeySchema"] == key_schema("pk", sort_key)
    expected = {"AttributeName": ttl, "Enabled": True} if ttl else None
    assert props.get("TimeToLiveSpecification") == expected
    # And the stack publishes its name for `--stack NAME`, and every function finds it in its environment
    assert spec.output_key in synth.template["Outputs"]
    for function in routes.FUNCTIONS:
        env = synth.environment(synth.function_id(function))
        assert env[spec.env_var] == {"Ref": synth.table_id(spec)}, function.handler
