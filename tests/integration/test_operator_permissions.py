"""docs/operators.md lists the AWS permissions the CLI needs with `--stack`: every operator command runs
here against a stack in moto, each AWS call it makes is turned into the IAM action and resource it needs
(a transaction into the action of each item), and each must be allowed by the policy on that page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from agent_auth import schema
from agent_auth.adapters.aws import AwsClients
from agent_auth.cli.main import main
from tests.conftest import Deployment
from tests.integration.jit_support import ask
from tests.integration.test_operator_targets import create_stack
from tests.support import ROOT, policy_document, write_policy

STACK = ["--stack", "agent-auth", "--region", "us-east-1"]
TRANSACTION_ITEMS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
Needed = set[tuple[str, str]]
"""(IAM action, resource): a table's placeholder (AGENTS_TABLE, AUDIT_TABLE/index/by-hour) or "*"."""


def documented_policy() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "operators.md").read_text()
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block, "docs/operators.md has no JSON policy"
    statements: list[dict[str, Any]] = json.loads(block.group(1))["Statement"]
    return statements


def allowed(action: str, resource: str) -> bool:
    for statement in documented_policy():
        resources = statement["Resource"]
        for pattern in [resources] if isinstance(resources, str) else resources:
            name = pattern.split(":table/", 1)[1] if ":table/" in pattern else "*"
            if action in statement["Action"] and re.fullmatch(re.escape(name).replace(r"\*", ".*"), resource):
                return True
    return False


@contextmanager
def recorded(placeholders: dict[str, str]) -> Iterator[Needed]:
    from botocore.client import BaseClient

    needed: Needed = set()
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.endpoint_prefix
        if service == "dynamodb" and operation == "TransactWriteItems":
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
