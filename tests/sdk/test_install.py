"""`pip install agent-auth-sdk` into a fresh virtual environment brings PyJWT and `cryptography` and
nothing of the server (no boto3, Powertools, pydantic), and the installed package verifies a token."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_install import isolated_env, run
from tests.sdk.fakes import API, ISSUER, sign_access_token
from tests.support import ROOT, rsa_key

pytestmark = pytest.mark.slow

PROGRAM = """
import json, sys
import agent_auth_sdk
from agent_auth_sdk import Verifier
from agent_auth_sdk.transport import Response

jwks, token, issuer, audience = json.loads(sys.stdin.read())

class Keys:
    def get(self, url):
        return Response(200, json.dumps(jwks).encode())

verified = Verifier(issuer, audience, jwks_uri=issuer + "/jwks.json", http=Keys()).verify(token)
print(agent_auth_sdk.__file__)
print(verified.agent)
"""


def test_a_fresh_install_has_none_of_the_servers_dependencies(tmp_path: Path) -> None:
    # Given the SDK built from a copy of sdk/ and installed into a fresh virtual environment
    source = tmp_path / "sdk"
    shutil.copytree(ROOT / "sdk", source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    installed = run(
        venv / "bin" / "python", "-m", "pip", "install", "--quiet", source, cwd=tmp_path, timeout=300
    )
    assert installed.returncode == 0, installed.stderr
    # Then what it installed is PyJWT, cryptography and theirs, nothing of the server
    listed = run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json", cwd=tmp_path)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"agent-auth-sdk", "pyjwt", "cryptography"} <= names
    assert not names & {"boto3", "botocore", "aws-lambda-powertools", "pydantic", "agent-auth", "moto", "mcp"}
    # And the installed package verifies a token
    key = rsa_key("as-1")
    stdin = json.dumps([{"keys": [key.jwk]}, sign_access_token(key), ISSUER, API])
    answer = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROGRAM],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=isolated_env(),  # without this run's PYTHONPATH
    )
    assert answer.returncode == 0, answer.stderr
    where, agent = answer.stdout.split()
    assert str(venv) in where and agent == "support-bot"
