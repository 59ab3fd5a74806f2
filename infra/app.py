"""The CDK app: `cdk synth` / `cdk deploy` (cdk.json), or `make synth`."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from agent_auth_infra.application import build_app

if __name__ == "__main__":
    build_app().synth()
