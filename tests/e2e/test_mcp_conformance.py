"""The official MCP conformance suite's authorization-server scenarios against `agent-auth dev`.

`npx @modelcontextprotocol/conformance authorization` checks the metadata document, then runs an
authorization code grant with PKCE as an MCP client would: it prints the authorization URL and waits
for its loopback callback. A real Chromium signs in on the development provider and consents, as a
user would. `make test` installs the suite (and the Node 22 it needs) under .cache/conformance.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.sign_in import sign_in_and_allow
from tests.support import ROOT

TOOLS = ROOT / ".cache" / "conformance" / "node_modules" / ".bin"
AUTHORIZE_URL = re.compile(r"^(http://\S+/authorize\?\S+)$")


def conformance() -> Path:
    if (TOOLS / "conformance").exists() and (TOOLS / "node").exists():
        return TOOLS / "conformance"
    reason = "the MCP conformance suite is not installed (make conformance-tools)"
    if os.environ.get("AGENT_AUTH_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.browser
@pytest.mark.slow
def test_the_mcp_conformance_authorization_scenarios_pass(dev_server: DevServer, tmp_path: Path) -> None:
    suite = conformance()
    env = {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}"}
    port = free_port()
    command = [str(suite), "authorization", "--url", dev_server.issuer, "--client-id", "public-app"]
    process = subprocess.Popen(
        [*command, "-p", str(port), "-o", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            match = AUTHORIZE_URL.match(line.strip())
            if match:
                sign_in_and_allow(match.group(1))
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    report = "\n".join(output)
    assert process.returncode == 0, report
    assert "✓ authorization-server-metadata-endpoint: 1 passed, 0 failed" in report, report
    assert "✓ authorization-code-grant: 1 passed, 0 failed" in report, report
    assert "Total: 2 passed, 0 failed" in report, report
