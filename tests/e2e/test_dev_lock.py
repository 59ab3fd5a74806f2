"""One `agent-auth dev` per folder (a second one used to take over the first one's state and delete it
on exit), and no server started by a test outlives the test run, even when the test fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2

from tests.e2e.conftest import BIN, _clean_env, start_dev_server, stop_dev_server
from tests.support import ROOT, rsa_key

LOCK = Path(".agent-auth") / "dev.lock"
STATE = Path(".agent-auth") / "dev.json"


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_a_second_server_in_the_folder_refuses_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    # Given a lock file left by a server that died (its PID no longer runs)
    (tmp_path / LOCK).parent.mkdir()
    (tmp_path / LOCK).write_text(f"{dead_pid()}\n")

    # When a server starts there / Then it takes the lock over
    first = start_dev_server(tmp_path, rsa_key())
    try:
        assert (tmp_path / LOCK).read_text().strip() == str(first.process.pid)
        state = (tmp_path / STATE).read_text()

        # When a second one starts in the same folder
        second = subprocess.run(
            [str(BIN / "agent-auth"), "dev", "--port", "0", "--policy", "policy.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
            check=False,
        )

        # Then it refuses, naming the running one, and leaves its state alone
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"another agent-auth dev (PID {first.process.pid}) at {first.issuer}" in second.stderr
        assert "Traceback" not in second.stderr
        assert (tmp_path / STATE).read_text() == state
        assert httpx2.get(f"{first.issuer}/jwks.json").status_code == 200
        assert first.cli("requests", "--dev").returncode == 0
    finally:
        stop_dev_server(first.process)

    # And stopping removes the state and the lock
    assert not (tmp_path / STATE).exists() and not (tmp_path / LOCK).exists()


def test_a_server_a_failing_test_leaves_running_is_killed_at_the_end_of_the_run(tmp_path: Path) -> None:
    # Given a test run whose only test starts a server and fails without stopping it
    pid_file = tmp_path / "pid"
    test_file = tmp_path / "test_leaves_a_server.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            from tests.e2e.conftest import start_dev_server
            from tests.support import rsa_key


            def test_fails(tmp_path):
                server = start_dev_server(tmp_path, rsa_key())
                Path({str(pid_file)!r}).write_text(str(server.process.pid))
                raise AssertionError("fails on purpose")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.e2e.conftest",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    # When the run is over / Then the test failed, and no process of the server's group is left
    assert run.returncode == 1 and "fails on purpose" in run.stdout, run.stdout + run.stderr
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return
    os.killpg(pid, 9)
    raise AssertionError(f"the server (PID {pid}) outlived its test run")
