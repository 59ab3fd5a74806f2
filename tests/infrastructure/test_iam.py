"""Least privilege: each function's role allows exactly the calls its code makes, and only /token may sign.

Signing keys rotate without a redeploy by default (issue 10, docs/key-rotation.md): keys `agent-auth keys
rotate` creates after the deploy have ARNs nobody knows at synth, so three functions may use the keys of
this account and region that carry an alias under the stack's signing prefix, and the well-known function
reads the key set's one item of the agents table. Those are the only conditioned statements and the only
wildcard KMS resource; the tests below pin them exactly, and pin the former shape for the opt-out
(`-c signingKeyRotation=false`, the `fixed` synthesis).
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from agent_auth import routes, schema
from agent_auth.signing_keys import KEY_SET_ITEM

from .synthesis import Synthesized, synthesize

PREVIOUS_KEY = "arn:aws:kms:eu-west-1:111122223333:key/11111111-2222-3333-4444-555555555555"
ANY_KEY_HERE = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":kms:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":key/*",
        ],
    ]
}
"""Every KMS key of the stack's account and region: allowed only together with ROTATED_KEYS."""
ROTATED_KEYS = {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/agent-auth/AgentAuth/signing/*"}}
"""A key is usable only if one of its aliases is under this stack's signing prefix (the stack key's
`.../initial`, and each key `keys rotate` made): written out, so a change of the prefix shows here."""
KEY_SET_ONLY = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [KEY_SET_ITEM]}}
"""The key set's item and no agent of the agents table. Only with GetItem, which always names its
partition key: ForAllValues never meets an empty set of leading keys here (as a Scan would)."""
CONDITIONS = (ROTATED_KEYS, KEY_SET_ONLY)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app deployed during a key rotation: one earlier key still verifies tokens in circulation
    return synthesize(tmp_path_factory.mktemp("rotated"), {"previousSigningKeyArns": [PREVIOUS_KEY]})


def grants(synth: Synthesized, role_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the role's policies allow; resources rendered as JSON, and for a
    conditioned statement rendered together with its condition ({"Condition": ..., "Resource": ...}), so
    an exact comparison pins the condition too."""
    pairs = set()
    for statement in synth.statements(role_id):
        # Changed when rotation became the default: a statement may carry a Condition now, but only one of
        # rotation's two, exactly (no other condition key, no other operator); still no NotAction,
        # NotResource or Deny.
        assert set(statement) <= {"Effect", "Action", "Resource", "Condition"}, statement
        assert statement["Effect"] == "Allow", statement
        condition = statement.get("Condition")
        assert condition is None or condition in CONDITIONS, statement
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                rendered = resource if condition is None else {"Condition": condition, "Resource": resource}
                pairs.add((action, json.dumps(rendered, sort_keys=True)))
    return pairs


def rotated_keys_grant(action: str) -> tuple[str, str]:
    """`action` on the keys behind the stack's signing alias prefix, in this account and region."""
    return action, json.dumps({"Condition": ROTATED_KEYS, "Resource": ANY_KEY_HERE}, sort_keys=True)


def key_set_grant(synth: Synthesized) -> tuple[str, str]:
    """GetItem on the key set's one item of the agents table."""
    agents = {"Fn::GetAtt": [synth.table_id(schema.AGENTS), "Arn"]}
    return "dynamodb:GetItem", json.dumps({"Condition": KEY_SET_ONLY, "Resource": agents}, sort_keys=True)


def arn_of(logical_id: str) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}, sort_keys=True)


NO_RESOURCE_LEVEL = {"xray:puttracesegments", "xray:puttelemetryrecords", "dynamodb:liststreams"}
"""Actions IAM cannot limit to a resource: active tracing's two, and the stream event source's one."""

TRACING = {("xray:PutTraceSegments", '"*"'), ("xray:PutTelemetryRecords", '"*"')}
"""What active tracing adds to every function's role (CDK's DefaultPolicy): segments, never payloads."""


def log_grants(synth: Synthesized, spec: routes.FunctionSpec) -> set[tuple[str, str]]:
    """What every function may do to be observed: write its own log group, and send X-Ray segments."""
    log_group = synth.props(synth.function_id(spec))["LoggingConfig"]["LogGroup"]["Ref"]
    return {("logs:CreateLogStream", arn_of(log_group)), ("logs:PutLogEvents", arn_of(log_group))} | TRACING


def key_id(synth: Synthesized, usage: str = "SIGN_VERIFY") -> str:
    return synth.key_id(usage)


def test_approvals_role_verifies_links_and_decides(synth: Synthesized) -> None:
    role = synth.role_id(synth.function_id(routes.APPROVALS))
    assert grants(synth, role) == log_grants(synth, routes.APPROVALS) | {
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.REQUESTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.REQUESTS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.AUDIT))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.THROTTLE))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.THROTTLE))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.SIGN_INS))),
        ("kms:VerifyMac", arn_of(key_id(synth, "GENERATE_VERIFY_MAC"))),
    }


def test_access_requests_role_authenticates_and_writes_requests(synth: Synthesized) -> None:
    role = synth.role_id(synth.function_id(routes.ACCESS_REQUESTS))
    assert grants(synth, role) == log_grants(synth, routes.ACCESS_REQUESTS) | {
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.THROTTLE))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REPLAY))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.AUDIT))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REQUESTS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.GRANTS))),
    }


def test_only_the_notifier_signs_links_and_sends_email(synth: Synthesized) -> None:
    notifier = synth.role_id(synth.function_id(routes.NOTIFIER))
    allowed = grants(synth, notifier)
    assert ("kms:GenerateMac", arn_of(key_id(synth, "GENERATE_VERIFY_MAC"))) in allowed
    assert {a for a, _ in allowed if a.startswith("ses:")} == {"ses:SendEmail"}
    for spec in routes.ALL_FUNCTIONS:
        if spec is routes.NOTIFIER:
            continue
        actions = {a for a, _ in grants(synth, synth.role_id(synth.function_id(spec)))}
        assert "kms:GenerateMac" not in actions and not any(a.startswith("ses:") for a in actions), spec.name
        if spec is not routes.APPROVALS:
            assert "kms:VerifyMac" not in actions, spec.name


def test_notifier_reads_the_requests_stream_inserts_only(synth: Synthesized) -> None:
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": synth.function_id(routes.NOTIFIER)}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [synth.table_id(schema.REQUESTS), "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert json.loads(props["FilterCriteria"]["Filters"][0]["Pattern"]) == {"eventName": ["INSERT"]}


def test_token_role_allows_exactly_what_the_token_endpoint_calls(synth: Synthesized) -> None:
    # Given the token function's role
    role = synth.role_id(synth.function_id(routes.TOKEN))

    # Then it may read agents, lock them and count failed authentications (on failure only), record
    # replay markers and audit records, read and consume grants, read and mark polled requests, redeem
    # codes, create, rotate and revoke refresh families, read consents, check in one batch whether an
    # exchange's subject token was revoked (revocations, its chain's agents, its JIT grants), sign, and
    # write its own logs: no more. With rotation (the default) it signs with the key the key set names
    # (read with the agents GetItem it already had): kms:Sign on the stack key, and on keys behind the
    # stack's signing alias prefix only (rotated_keys_grant), never on an other key of the account
    assert grants(synth, role) == log_grants(synth, routes.TOKEN) | {
        ("dynamodb:BatchGetItem", arn_of(synth.table_id(schema.REVOCATIONS))),
        # a reused refresh token's family is recorded as revoked, for its access tokens
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REVOCATIONS))),
        ("dynamodb:BatchGetItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:BatchGetItem", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.CODES))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.CODES))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.REFRESH))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REFRESH))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.REFRESH))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.CONSENTS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.THROTTLE))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.REPLAY))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.AUDIT))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:Query", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.GRANTS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.REQUESTS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.REQUESTS))),
        ("kms:Sign", arn_of(key_id(synth))),
        rotated_keys_grant("kms:Sign"),
    }


def test_only_client_endpoints_count_failures_and_lock_agents(synth: Synthesized) -> None:
    # Given every function's role
    throttle, agents = arn_of(synth.table_id(schema.THROTTLE)), arn_of(synth.table_id(schema.AGENTS))
    for spec in routes.ALL_FUNCTIONS:
        allowed = grants(synth, synth.role_id(synth.function_id(spec)))
        on_throttle = {action for action, resource in allowed if resource == throttle}
        # Then only the endpoints that authenticate clients may count failures (UpdateItem, nothing
        # else) and lock an agent; the approval function counts and checks bad links by source; no
        # other function touches the throttle table or changes an agent
        if spec in (routes.TOKEN, routes.ACCESS_REQUESTS, routes.LIFECYCLE):
            assert on_throttle == {"dynamodb:UpdateItem"}, spec.name
            assert ("dynamodb:UpdateItem", agents) in allowed, spec.name
        elif spec == routes.APPROVALS:
            # Bad approval links count against their source, which is checked before VerifyMac.
            assert on_throttle == {"dynamodb:GetItem", "dynamodb:UpdateItem"}, spec.name
            assert ("dynamodb:UpdateItem", agents) not in allowed, spec.name
        else:
            assert not on_throttle, spec.name
            assert ("dynamodb:UpdateItem", agents) not in allowed, spec.name


def test_token_role_without_rotation_signs_with_the_stack_key_only(fixed: Synthesized) -> None:
    # Given the opt-out (-c signingKeyRotation=false) / Then the token function's KMS access is the former
    # one exactly: kms:Sign on the stack's key, no other key, no condition
    allowed = grants(fixed, fixed.role_id(fixed.function_id(routes.TOKEN)))
    assert {pair for pair in allowed if pair[0].startswith("kms:")} == {("kms:Sign", arn_of(key_id(fixed)))}


def test_wellknown_role_reads_public_keys_and_the_key_set_item_only(synth: Synthesized) -> None:
    # Given the discovery/JWKS function's role, with rotation on (the default)
    role = synth.role_id(synth.function_id(routes.WELL_KNOWN))

    # Then it may fetch the public key of the stack key and of the keys behind the stack's signing alias
    # prefix, read the key set's one item (dynamodb:LeadingKeys = keys#signing), and write its own logs.
    # Changed from "no DynamoDB at all" when rotation became the default: the key set lives in the agents
    # table, and this function may read that one item, never an agent or its secret hash.
    assert grants(synth, role) == log_grants(synth, routes.WELL_KNOWN) | {
        ("kms:GetPublicKey", arn_of(key_id(synth))),
        rotated_keys_grant("kms:GetPublicKey"),
        key_set_grant(synth),
    }
    dynamo = [s for s in synth.statements(role) if json.dumps(s["Action"]).startswith('"dynamodb:')]
    assert dynamo == [
        {
            "Action": "dynamodb:GetItem",
            "Condition": KEY_SET_ONLY,
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [synth.table_id(schema.AGENTS), "Arn"]},
        }
    ]


def test_wellknown_role_without_rotation_may_only_read_the_public_key(fixed: Synthesized) -> None:
    # Given the opt-out / Then the former shape exactly: the public key and its own logs, no DynamoDB at all
    role = fixed.role_id(fixed.function_id(routes.WELL_KNOWN))
    assert grants(fixed, role) == log_grants(fixed, routes.WELL_KNOWN) | {
        ("kms:GetPublicKey", arn_of(key_id(fixed)))
    }
    assert not [action for action, _ in grants(fixed, role) if action.lower().startswith("dynamodb:")]


def test_exactly_three_functions_may_use_rotated_keys(synth: Synthesized) -> None:
    # Given every function's role / Then only these use keys behind the alias prefix: the token function
    # signs with them; the well-known function publishes them and the lifecycle function verifies the
    # tokens they signed (both through wiring.public_keys). The lifecycle grant is new with the default:
    # without it, introspection and revocation failed for every token once a rotated key was published.
    uses = {
        spec: {a for a, r in grants(synth, synth.role_id(synth.function_id(spec))) if "ResourceAliases" in r}
        for spec in routes.ALL_FUNCTIONS
    }
    assert {spec: actions for spec, actions in uses.items() if actions} == {
        routes.TOKEN: {"kms:Sign"},
        routes.WELL_KNOWN: {"kms:GetPublicKey"},
        routes.LIFECYCLE: {"kms:GetPublicKey"},
    }


def test_only_the_token_function_may_sign(synth: Synthesized) -> None:
    # Given every IAM policy in the template, whoever it is attached to
    token_role = synth.role_id(synth.function_id(routes.TOKEN))
    for roles, document in synth.policy_documents():
        for statement in _as_list(document["Statement"]):
            actions = _as_list(statement.get("Action", []))
            # Then any statement that would allow kms:Sign (also through a wildcard) is the token role's
            if statement["Effect"] == "Allow" and any(fnmatchcase("kms:sign", a.lower()) for a in actions):
                assert roles == {token_role}, (roles, statement)
            assert "NotAction" not in statement, statement


def test_key_policy_delegates_to_iam_only(synth: Synthesized) -> None:
    # Given each key's resource policy
    statements = [
        s for k in synth.of_type("AWS::KMS::Key").values() for s in k["Properties"]["KeyPolicy"]["Statement"]
    ]
    for statement in statements:
        # Then it names no role or service directly: the account's IAM policies (above) decide who signs
        principal = statement["Principal"]
        assert set(principal) == {"AWS"}, statement
        assert json.dumps(principal["AWS"]).endswith(':root"]]}'), statement


def test_no_wildcard_kms_resource_but_the_rotated_keys_and_no_wildcard_dynamodb(synth: Synthesized) -> None:
    # Given every statement of every IAM policy, with rotation on (the default)
    for statement in synth.statements():
        actions = [a.lower() for a in _as_list(statement["Action"])]
        if not any(a.startswith(("dynamodb:", "kms:")) for a in actions):
            continue
        if set(actions) <= NO_RESOURCE_LEVEL:
            continue  # no resource-level permissions (X-Ray, the stream source; acknowledged in nag)
        # Then no action is a wildcard
        assert not [a for a in actions if "*" in a], statement
        # And the one wildcard resource, changed from "none" when rotation became the default, is the keys
        # of this account and region, for kms:Sign or kms:GetPublicKey alone, and only with the condition
        # on the stack's signing alias prefix (keys made after the deploy have unknown ARNs)
        for resource in _as_list(statement["Resource"]):
            if "*" in json.dumps(resource):
                assert resource == ANY_KEY_HERE, statement
                assert actions in (["kms:sign"], ["kms:getpublickey"]), statement
                assert statement["Condition"] == ROTATED_KEYS, statement


def test_without_rotation_no_dynamodb_or_kms_action_on_a_wildcard(fixed: Synthesized) -> None:
    # Given every statement of every IAM policy of the opt-out (-c signingKeyRotation=false)
    for statement in fixed.statements():
        actions = [a.lower() for a in _as_list(statement["Action"])]
        if not any(a.startswith(("dynamodb:", "kms:")) for a in actions):
            continue
        if set(actions) <= NO_RESOURCE_LEVEL:
            continue  # no resource-level permissions (X-Ray, the stream source; acknowledged in nag)
        # Then neither the actions nor the resources are wildcards
        assert not [a for a in actions if "*" in a], statement
        for resource in _as_list(statement["Resource"]):
            assert "*" not in json.dumps(resource), statement


def test_function_roles_trust_only_lambda_and_use_no_managed_policies(synth: Synthesized) -> None:
    for spec in routes.ALL_FUNCTIONS:
        role = synth.props(synth.role_id(synth.function_id(spec)))
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]
        assert "ManagedPolicyArns" not in role


def test_previous_keys_are_readable_by_wellknown_only(rotated: Synthesized) -> None:
    # Then the JWKS function may read the earlier key's public half, to keep publishing it
    wellknown = grants(rotated, rotated.role_id(rotated.function_id(routes.WELL_KNOWN)))
    assert ("kms:GetPublicKey", json.dumps(PREVIOUS_KEY)) in wellknown
    # And the token function may not sign with it, nor touch it at all
    token = grants(rotated, rotated.role_id(rotated.function_id(routes.TOKEN)))
    assert not [pair for pair in token if PREVIOUS_KEY in pair[1]]
    # And both functions are told which keys to publish
    for spec in routes.ALL_FUNCTIONS:
        assert rotated.environment(rotated.function_id(spec))["PREVIOUS_SIGNING_KEY_ARNS"] == PREVIOUS_KEY
    assert rotated.error is None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_authorize_role_signs_users_in_and_issues_codes_but_never_signs_tokens(synth: Synthesized) -> None:
    # Given the authorize function's role (authorization endpoint, upstream callback, consent)
    role = synth.role_id(synth.function_id(routes.AUTHORIZE))

    # Then it may read agents, keep sign-ins and sessions, write codes and consents, audit, and read the
    # upstream provider's client secret: no KMS
    (secret,) = synth.of_type("AWS::SecretsManager::Secret")
    assert grants(synth, role) == log_grants(synth, routes.AUTHORIZE) | {
        ("secretsmanager:GetSecretValue", json.dumps({"Ref": secret})),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.AGENTS))),
        ("dynamodb:DeleteItem", arn_of(synth.table_id(schema.SIGN_INS))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.SIGN_INS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.SIGN_INS))),
        ("dynamodb:UpdateItem", arn_of(synth.table_id(schema.SIGN_INS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.CODES))),
        ("dynamodb:GetItem", arn_of(synth.table_id(schema.CONSENTS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.CONSENTS))),
        ("dynamodb:PutItem", arn_of(synth.table_id(schema.AUDIT))),
    }
