"""`agent-auth dev` as a user runs it: a subprocess on a free port, in its own working directory."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import ClientKey, policy_document, rsa_key, write_policy

BIN = Path(sys.executable).parent
READY = re.compile(r"ready at (http://\S+)")


@dataclass
class DevServer:
    process: subprocess.Popen[str]
    issuer: str
    workdir: Path
    policy_file: Path
    key: ClientKey
    banner: list[str] = field(default_factory=list)

    @property
    def credentials(self) -> dict[str, dict[str, str]]:
        return json.loads((self.workdir / "credentials.json").read_text())  # type: ignore[no-any-return]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "agent-auth"), *args],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
            check=False,
        )


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_dev_server(
    workdir: Path,
    key: ClientKey,
    extra_args: tuple[str, ...] = (),
    document: dict[str, Any] | None = None,
) -> DevServer:
    """`document`: the policy to run with; by default tests/support's, with `key` for signing-agent."""
    if document is None:
        document = policy_document({"rsa": key})
        document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")  # authlib signs without a kid
    policy_file = write_policy(workdir / "policy.yaml", document)
    process = subprocess.Popen(
        [
            str(BIN / "agent-auth"),
            "dev",
            "--port",
            "0",
            "--policy",
            str(policy_file),
            "--credentials-out",
            "credentials.json",
            *extra_args,
        ],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
        start_new_session=True,  # its own process group, which teardown kills whole
    )
    RUNNING.append(process)
    banner: list[str] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))
        match = READY.search(line)
        if match:
            # Keep draining the output so a chatty server never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return DevServer(process, match.group(1), workdir, policy_file, key, banner)
    kill_group(process)
    raise AssertionError("agent-auth dev did not become ready:\n" + "\n".join(banner))


RUNNING: list[subprocess.Popen[str]] = []
"""Every server start_dev_server started, so the end of the session can kill what a test left running."""


def kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL to the server's whole process group (start_new_session made it the leader), once: then
    it leaves RUNNING, so its id, free again, is never signalled later."""
    if process not in RUNNING:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    RUNNING.remove(process)


def stop_dev_server(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a user stops it; its group is killed if it has not stopped within 20 seconds (and
    in any case afterwards), so a hung server fails its tests instead of outliving the run."""
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    finally:
        kill_group(process)


@pytest.fixture(scope="session", autouse=True)
def _no_server_outlives_the_run() -> Iterator[None]:
    """However a test ended (failed, errored, interrupted), the servers it started die with the run."""
    try:
        yield
    finally:
        _kill_all()


def _kill_all() -> None:
    for process in list(RUNNING):
        kill_group(process)


atexit.register(_kill_all)  # also when the run itself is interrupted


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path_factory.mktemp("dev"), rsa_key())
    try:
        yield server
    finally:
        stop_dev_server(server.process)


def fetch_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def callback() -> Iterator[Any]:
    """An agent's loopback redirect URI that records what the browser brings back (tests/e2e/sign_in.py)."""
    from tests.e2e.sign_in import Callback

    listener = Callback()
    yield listener
    listener.server.shutdown()


@contextlib.contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """An ASGI app (the example MCP server) on 127.0.0.1:`port` under uvicorn, in a thread, for the
    duration of the block."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)
