"""The SDK installs and imports without the server's dependencies (product.md, "Token lifecycle")."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

BLOCKED = ("boto3", "botocore", "aws_lambda_powertools", "pydantic", "moto", "yaml", "agent_auth", "mcp")

PROGRAM = f"""
import importlib.abc, sys
sys.path.insert(0, {str(ROOT / "sdk")!r})

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Block())
import agent_auth_sdk, agent_auth_sdk.asgi, agent_auth_sdk.http_auth
from agent_auth_sdk import AgentAuth, Verifier
AgentAuth("http://127.0.0.1:1", "support-bot", client_secret="s")
Verifier("http://127.0.0.1:1", "https://crm.example.com")
agent_auth_sdk.AgentAuth("http://127.0.0.1:1", "a", client_secret="s").auth(resource="https://x")
print(sorted(name for name in sys.modules if name.split(".")[0] in {BLOCKED!r}))
"""


def test_the_sdk_imports_without_boto3_powertools_pydantic_or_the_server() -> None:
    # Given a Python where the server's packages cannot be imported, and only sdk/ on the path
    answer = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            PROGRAM.replace(
                "sys.meta_path.insert", f"sys.path.insert(0, {str(ROOT / 'sdk')!r}); sys.meta_path.insert"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the agent side, the verifier and the ASGI and httpx adapters import and build, touching none
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == "[]"


def test_the_sdk_declares_no_server_dependency() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "agent-auth-sdk"
    names = [d.split("[")[0].split(">")[0].split("=")[0].strip().lower() for d in project["dependencies"]]
    assert names == ["pyjwt"]
