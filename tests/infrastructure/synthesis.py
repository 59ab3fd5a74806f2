"""Synthesizing the CDK app for the tests, and reading what came out: the template and validation report."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

from aws_cdk import App  # noqa: E402

from agent_auth.routes import FunctionSpec  # noqa: E402
from agent_auth.schema import TableSpec  # noqa: E402
from agent_auth_infra.application import build_app  # noqa: E402

NO_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
"""Bundle no stack: the asset keeps its (custom) hash, pip never runs."""

NAG_PLUGIN = "AwsSolutions"


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    template: dict[str, Any]
    report: dict[str, Any]
    """validation-report.json: one report per validation plugin (cdk-nag, CloudFormation validation)."""
    error: str | None
    """Why app.synth() failed (a validation failure), or None."""

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def key_id(self, usage: str = "SIGN_VERIFY") -> str:
        """The KMS key with this KeyUsage: SIGN_VERIFY (tokens) or GENERATE_VERIFY_MAC (approval links)."""
        (logical_id,) = [
            k for k, v in self.of_type("AWS::KMS::Key").items() if v["Properties"]["KeyUsage"] == usage
        ]
        return logical_id

    def props(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return properties

    def output_ref(self, output_key: str) -> str:
        """The logical id of the resource an output names with {"Ref": ...}."""
        ref: str = self.template["Outputs"][output_key]["Value"]["Ref"]
        return ref

    def table_id(self, spec: TableSpec) -> str:
        return self.output_ref(spec.output_key)

    def function_id(self, spec: FunctionSpec) -> str:
        matches = [
            k
            for k, v in self.of_type("AWS::Lambda::Function").items()
            if v["Properties"].get("Handler") == spec.handler
        ]
        assert len(matches) == 1, f"expected one function with handler {spec.handler}, found {matches}"
        return matches[0]

    def role_id(self, function_id: str) -> str:
        role_id: str = self.props(function_id)["Role"]["Fn::GetAtt"][0]
        return role_id

    def environment(self, function_id: str) -> dict[str, Any]:
        variables: dict[str, Any] = self.props(function_id)["Environment"]["Variables"]
        return variables

    def policy_documents(self) -> Iterator[tuple[set[str], dict[str, Any]]]:
        """Every IAM policy in the template, with the logical ids of the roles it applies to."""
        for logical_id, resource in self.resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Role":
                for policy in props.get("Policies", []):
                    yield {logical_id}, policy["PolicyDocument"]
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                roles = {role["Ref"] for role in props.get("Roles", [])}
                yield roles, props["PolicyDocument"]

    def statements(self, role_id: str | None = None) -> list[dict[str, Any]]:
        """The statements of every IAM policy, or of those that apply to one role."""
        return [
            statement
            for roles, document in self.policy_documents()
            if role_id is None or role_id in roles
            for statement in _as_list(document["Statement"])
        ]

    def plugin_report(self, plugin: str) -> dict[str, Any] | None:
        for report in self.report.get("pluginReports", []):
            if report["pluginName"] == plugin:
                return dict(report)
        return None

    def violations(self, plugin: str | None = None) -> list[str]:
        """Unacknowledged findings, as "<rule> at <construct path>" lines."""
        return [
            f"{violation['ruleName']} at {construct['constructPath']}: {violation['description']}"
            for report in self.report.get("pluginReports", [])
            if plugin is None or report["pluginName"] == plugin
            for violation in report.get("violations", [])
            for construct in violation.get("violatingConstructs", [{"constructPath": "?"}])
        ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def synthesize_app(app: App, outdir: Path) -> Synthesized:
    """Synthesize, keeping a validation failure as data so the tests can say exactly what failed."""
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # jsii turns the ValidationFailed error into a RuntimeError
        error = str(exc)
    templates = sorted(outdir.glob("*.template.json"))
    if len(templates) != 1:
        raise AssertionError(f"expected one template in {outdir}, found {templates}; synth error: {error}")
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(outdir, json.loads(templates[0].read_text()), report, error)


def synthesize(outdir: Path, context: dict[str, Any] | None = None, *, bundle: bool = False) -> Synthesized:
    app = build_app({**({} if bundle else NO_BUNDLING), **(context or {})}, str(outdir))
    return synthesize_app(app, outdir)
