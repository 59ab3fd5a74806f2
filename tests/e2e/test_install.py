"""`pip install agent-auth` with no extras gives a working `agent-auth dev` (the product's contract):
a fresh virtual environment, the package built from this checkout, the development server started from
it, a token, the CLI's `--dev`, an approval email. Nothing from the test environment leaks in."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.e2e.conftest import READY
from tests.support import ROOT, policy_document, rsa_key, write_policy

pytestmark = pytest.mark.slow


def isolated_env() -> dict[str, str]:
    """The environment without this test run's packages (PYTHONPATH, the active venv) or AWS settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def project_copy(destination: Path) -> Path:
    """What an sdist holds, copied, so building the package leaves nothing in the checkout."""
    destination.mkdir()
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    shutil.copy(ROOT / "README.md", destination / "README.md")
    shutil.copytree(
        ROOT / "functions" / "agent_auth",
        destination / "functions" / "agent_auth",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return destination


def run(*args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=isolated_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_plain_install_runs_the_development_server(tmp_path: Path) -> None:
    # Given agent-auth installed without extras into a fresh virtual environment
    source = project_copy(tmp_path / "source")
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    installed = run(
        venv / "bin" / "python", "-m", "pip", "install", "--quiet", source, cwd=tmp_path, timeout=240
    )
    assert installed.returncode == 0, installed.stderr
    where = run(venv / "bin" / "python", "-c", "import agent_auth; print(agent_auth.__file__)", cwd=tmp_path)
    assert str(venv) in where.stdout, "the installed package, not this checkout's"

    # When its `agent-auth dev` starts in an empty directory
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_policy(workdir / "policy.yaml", policy_document({"rsa": rsa_key()}))
    process = subprocess.Popen(
        [
            str(venv / "bin" / "agent-auth"),
            *("dev", "--port", "0", "--policy", "policy.yaml", "--credentials-out", "credentials.json"),
        ],
        cwd=workdir,
        env=isolated_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        issuer = wait_until_ready(process)
        state = json.loads((workdir / ".agent-auth" / "dev.json").read_text())
        assert state["issuer"] == issuer

        # Then an agent gets a token with the secret it was given
        secret = json.loads((workdir / "credentials.json").read_text())["support-bot"]["client_secret"]
        token = httpx2.post(
            f"{issuer}/token", auth=("support-bot", secret), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 200, token.text

        # And the CLI reaches the server's AWS stand-in (`--dev`)
        audit = run(venv / "bin" / "agent-auth", "audit", "--dev", "--json", cwd=workdir)
        assert audit.returncode == 0, audit.stderr
        assert any(json.loads(line)["action"] == "token.issue" for line in audit.stdout.splitlines())

        # And an access request is emailed to its approvers (the stream, the notifier, SES)
        asked = httpx2.post(
            f"{issuer}/access-requests",
            auth=("support-bot", secret),
            data={"scope": "crm.contacts.write", "reason": "Installed without extras"},
        )
        assert asked.status_code == 202, asked.text
        assert mailed(issuer, asked.json()["request_id"])
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


def wait_until_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))
        match = READY.search(line)
        if match:
            return match.group(1)
    raise AssertionError("agent-auth dev did not become ready:\n" + "\n".join(banner))


def mailed(issuer: str, request_id: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(request_id in m["text"] for m in httpx2.get(f"{issuer}/_dev/mailbox").json()):
            return True
        time.sleep(0.1)
    return False
