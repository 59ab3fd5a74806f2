"""docs/operators.md lists the AWS permissions the CLI needs with `--stack`: every operator command runs
here against a stack in moto, each AWS call it makes is turned into the IAM action and resource it needs
(a transaction into the action of each item), and each must be allowed by the policy on that page.

KMS calls (`agent-auth keys`) are checked with their resource (`key/ID`, `alias/NAME`) and the condition
keys IAM evaluates for them (kms:KeySpec and kms:KeyUsage of CreateKey, kms:ResourceAliases of a key), so
the page's conditions are checked too, not only its actions."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from agent_auth import schema
from agent_auth.adapters.aws import AwsClients
from agent_auth.cli.main import main
from agent_auth.config import INITIAL_KEY_ALIAS, key_alias_prefix
from tests.conftest import Deployment
from tests.integration.jit_support import ask
from tests.integration.test_operator_targets import create_stack
from tests.support import ROOT, policy_document, write_policy

STACK_NAME = "agent-auth"
STACK = ["--stack", STACK_NAME, "--region", "us-east-1"]
TRANSACTION_ITEMS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Needed(set[tuple[str, str]]):
    """(IAM action, resource): a table's placeholder (AGENTS_TABLE, AUDIT_TABLE/index/by-hour), a KMS
    resource (key/ID, alias/NAME) or "*"; `context` holds the condition keys IAM sees for a KMS request."""

    def __init__(self) -> None:
        super().__init__()
        self.context: dict[tuple[str, str], dict[str, Any]] = {}

    def need(self, action: str, resource: str, context: dict[str, Any] | None = None) -> None:
        self.add((action, resource))
        if context is not None:
            self.context[(action, resource)] = context


def documented_policy() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "operators.md").read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block, "docs/operators.md has no JSON policy"
    statements: list[dict[str, Any]] = json.loads(block.group(1))["Statement"]
    return statements


def allowed(action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    for statement in documented_policy():
        resources = statement["Resource"]
        for pattern in [resources] if isinstance(resources, str) else resources:
            if ":table/" in pattern:
                name = pattern.split(":table/", 1)[1]
            elif ":kms:" in pattern:  # arn:aws:kms:REGION:ACCOUNT:key/* or :alias/agent-auth/NAME/...
                name = pattern.split(":", 5)[5].replace("NAME", STACK_NAME)
            else:
                name = "*"
            if (
                action in statement["Action"]
                and re.fullmatch(re.escape(name).replace(r"\*", ".*"), resource)
                and conditions_hold(statement.get("Condition", {}), context or {})
            ):
                return True
    return False


def conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, Any]) -> bool:
    """IAM's evaluation of the operators the page uses; a key the request does not carry never matches."""
    for operator, keys in conditions.items():
        for key, expected in keys.items():
            # The page's placeholder NAME is the stack's name, in condition values as in resources
            wanted = [
                w.replace("NAME", STACK_NAME)
                for w in (expected if isinstance(expected, list) else [expected])
            ]
            value = context.get(key)
            if operator == "StringEquals":
                if value not in wanted:
                    return False
            elif operator == "ForAnyValue:StringLike":
                if not any(fnmatchcase(v, w) for v in value or [] for w in wanted):
                    return False
            else:
                raise AssertionError(f"docs/operators.md uses {operator}, which this test cannot evaluate")
    return True


def _key_id(key: str) -> str:
    return key.split(":key/", 1)[1] if ":key/" in key else key


def _kms_needs(needed: Needed, call: Any, operation: str, params: dict[str, Any]) -> None:
    """The resources and condition keys IAM authorizes a KMS call with (docs: Controlling access to
    aliases; ABAC for AWS KMS)."""
    action = f"kms:{operation}"
    if operation == "CreateKey":
        needed.need(
            action, "*", {"kms:KeySpec": params.get("KeySpec"), "kms:KeyUsage": params.get("KeyUsage")}
        )
    elif operation == "CreateAlias":  # on the alias, and on the key it names
        needed.need(action, params["AliasName"])
        needed.need(action, f"key/{_key_id(params['TargetKeyId'])}", {})
    else:
        key = _key_id(params["KeyId"])
        aliases = [a["AliasName"] for a in call("ListAliases", {"KeyId": key})["Aliases"]]
        needed.need(action, f"key/{key}", {"kms:ResourceAliases": aliases})


@contextmanager
def recorded(placeholders: dict[str, str]) -> Iterator[Needed]:
    from botocore.client import BaseClient

    needed = Needed()
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.endpoint_prefix
        if service == "kms":
            _kms_needs(needed, lambda op, p: original(self, op, p), operation, params)
        elif service == "dynamodb" and operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                [(kind, body)] = item.items()
                needed.add((f"dynamodb:{TRANSACTION_ITEMS[kind]}", placeholders[body["TableName"]]))
        elif service == "dynamodb":
            resource = placeholders[params["TableName"]]
            if params.get("IndexName"):
                resource += f"/index/{params['IndexName']}"
            needed.add((f"dynamodb:{operation}", resource))
        else:
            needed.add((f"{service}:{operation}", "*"))
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", recording):
        yield needed


COMMANDS = [
    ["apply", "{policy}", "--dry-run"],
    ["apply", "{changed}"],
    ["secret", "rotate", "support-bot"],
    ["requests"],
    ["grants", "list", "--all"],
    ["grants", "revoke", "{grant}"],
    ["consents"],
    ["consents", "--user", "alice@example.com"],
    ["audit", "--since", "1h"],
    ["audit", "--user", "alice@example.com"],
    ["audit", "--agent", "support-bot"],
]


def test_every_call_of_every_command_is_allowed_by_the_documented_policy(
    aws: AwsClients, deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack with an auto-approved grant, and a policy that changes billing-agent's roles
    create_stack(aws, deployment)
    status, body = ask(deployment, "billing-agent", duration="600")
    assert status == 200, body
    document = policy_document(deployment.keys)
    document["agents"]["billing-agent"]["roles"] = ["billing-reader"]
    changed = write_policy(tmp_path / "changed.yaml", document)
    env = deployment.settings.to_env()
    placeholders = {env[spec.env_var]: spec.env_var for spec in schema.ALL_TABLES}
    values = {"policy": str(deployment.policy_file), "changed": str(changed), "grant": body["request_id"]}

    for command in COMMANDS:
        # When each command runs / Then every call it makes is allowed by the page's policy
        argv = [part.format(**values) for part in command]
        with recorded(placeholders) as needed:
            assert main([*argv, *STACK]) == 0, capsys.readouterr().err
        assert needed, f"{command}: no AWS call"
        refused = sorted(n for n in needed if n[0] != "sts:GetCallerIdentity" and not allowed(*n))
        assert refused == [], f"{' '.join(command)}: docs/operators.md does not allow {refused}"
        # And the audit table is only ever appended to
        edits = {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
        assert not {a for a, r in needed if r == "AUDIT_TABLE"} & edits, command
    assert "Applied as" in capsys.readouterr().out  # the changed policy was written, not just planned


def create_rotating_stack(aws: AwsClients, deployment: Deployment) -> str:
    """A stack in moto as the CDK deploys it by default (signingKeyRotation): the table outputs, the signing
    key behind `<prefix>/initial`, and the outputs `agent-auth keys` reads."""
    s = deployment.settings
    env = s.to_env()
    prefix = key_alias_prefix(STACK_NAME)
    outputs = {spec.output_key: env[spec.env_var] for spec in schema.ALL_TABLES}
    outputs |= {
        schema.SIGNING_KEY_OUTPUT: s.signing_key_arn,
        schema.SIGNING_ALG_OUTPUT: s.signing_alg,
        schema.SIGNING_KEY_ALIAS_OUTPUT: prefix,
        schema.TOKEN_LIFETIME_OUTPUT: str(s.token_lifetime),
    }
    aws.kms.create_alias(AliasName=f"{prefix}/{INITIAL_KEY_ALIAS}", TargetKeyId=s.signing_key_arn)
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws.cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template))
    return prefix


KEY_COMMANDS: list[tuple[int, list[str]]] = [
    (0, ["keys", "list"]),
    (0, ["keys", "rotate", "--overlap", "11m"]),
    (0, ["keys", "list", "--json"]),
    # Once the first key's last token has expired: it is disabled (the stack's own key: no deletion)
    (3 * 3600, ["keys", "retire"]),
    (3 * 3600, ["keys", "rotate", "--overlap", "11m"]),
    # And later the first rotated key: disabled, and its deletion scheduled (a key `rotate` made)
    (6 * 3600, ["keys", "retire"]),
]
"""(seconds the clock has moved, command): every call `keys` makes, the retirement of both kinds of key."""


def test_every_call_of_the_keys_commands_is_allowed_by_the_documented_policy(
    aws: AwsClients,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agent_auth.clock import SystemClock

    # Given a stack deployed with key rotation (the default)
    prefix = create_rotating_stack(aws, deployment)
    env = deployment.settings.to_env()
    placeholders = {env[spec.env_var]: spec.env_var for spec in schema.ALL_TABLES}
    start, offset = time.time(), [0]
    monkeypatch.setattr(SystemClock, "now", lambda self: start + offset[0])
    every_call = Needed()

    for moved, command in KEY_COMMANDS:
        # When each command runs, the clock moved as the runbook waits
        offset[0] = moved
        with recorded(placeholders) as needed:
            assert main([*command, *STACK]) == 0, capsys.readouterr().err
        # Then every call it makes is allowed by the page's policy, conditions included
        refused = sorted(
            n for n in needed if n[0] != "sts:GetCallerIdentity" and not allowed(*n, needed.context.get(n))
        )
        assert refused == [], f"{' '.join(command)}: docs/operators.md does not allow {refused}"
        every_call |= needed
    # And the runbook made every KMS call `keys` can make: creating, naming, disabling, scheduling deletion
    assert {a for a, _ in every_call if a.startswith("kms:")} == {
        "kms:CreateKey",
        "kms:CreateAlias",
        "kms:DescribeKey",
        "kms:DisableKey",
        "kms:ScheduleKeyDeletion",
    }
    states = [
        json.loads(line)["state"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert sorted(states) == ["active", "pending"]
    assert [a["AliasName"] for a in aws.kms.list_aliases()["Aliases"] if a["AliasName"].startswith(prefix)]


def test_the_documented_policy_refuses_keys_outside_the_prefix(aws: AwsClients) -> None:
    # Given a key of the account that is not the stack's (no alias under its prefix)
    other = aws.kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
    aws.kms.create_alias(AliasName="alias/someone-else/signing", TargetKeyId=other)
    aliases = {"kms:ResourceAliases": ["alias/someone-else/signing"]}
    # Then the page's policy lets nobody disable or delete it, nor name a key outside the prefix
    assert not allowed("kms:DisableKey", f"key/{other}", aliases)
    assert not allowed("kms:ScheduleKeyDeletion", f"key/{other}", aliases)
    assert not allowed("kms:CreateAlias", "alias/agent-auth/other-stack/signing/x")
    # And it creates signing keys only (no encryption key through this policy)
    assert not allowed(
        "kms:CreateKey", "*", {"kms:KeySpec": "SYMMETRIC_DEFAULT", "kms:KeyUsage": "ENCRYPT_DECRYPT"}
    )
    assert allowed("kms:CreateKey", "*", {"kms:KeySpec": "ECC_NIST_P256", "kms:KeyUsage": "SIGN_VERIFY"})
    # While the stack's keys are in reach
    ours = {"kms:ResourceAliases": [f"{key_alias_prefix(STACK_NAME)}/{INITIAL_KEY_ALIAS}"]}
    assert allowed("kms:DisableKey", f"key/{other}", ours)
