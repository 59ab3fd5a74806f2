"""Builds the CDK app: one entry point for `infra/app.py` (cdk synth/deploy) and the infrastructure tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from agent_auth_infra.settings import DeploymentSettings
from agent_auth_infra.stack import AgentAuthStack

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (defaults and feature flags), so a test synthesizes what `cdk synth` does."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text()).get("context", {})
    return context


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    settings = DeploymentSettings.from_context(app.node)
    AgentAuthStack(
        app,
        settings.stack_name,
        settings=settings,
        # No env: one template for any account and region (the region is the AWS::Region pseudo parameter).
        description="agent-auth: OAuth 2.0 authorization server for AI agents",
    )
    # Always on. An unacknowledged error fails the synth; a warning is printed (and fails the tests).
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
