"""`make dev` on a fresh clone says what it is installing, step by step (pip itself is quiet), and still
runs exactly the install `make test` relies on. The Makefile's install rule runs for real with a stand-in
Python whose venv's pip only records its arguments, so nothing is downloaded."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

STAND_IN = """#!/bin/sh
# A stand-in for python3: the version check passes; `-m venv DIR` makes DIR/bin/pip, which logs its args.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "pip $*" >> "%s"\\n' "$PIP_LOG" > "$3/bin/pip"
  chmod +x "$3/bin/pip"
fi
exit 0
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_the_install_rule_shows_its_steps_and_installs_as_before(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "sdk").mkdir()
    shutil.copy(ROOT / "sdk" / "pyproject.toml", tmp_path / "sdk" / "pyproject.toml")
    python = tmp_path / "python-stand-in"
    python.write_text(STAND_IN)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "pip.log"
    made = subprocess.run(
        ["make", f"PYTHON={python}", ".venv/.installed"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PIP_LOG": str(log)},
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    steps = [line for line in made.stdout.splitlines() if line.startswith("==>")]
    assert [s.split("]")[0] for s in steps[:3]] == ["==> [1/3", "==> [2/3", "==> [3/3"]
    assert steps[-1] == "==> installed; the CLI is .venv/bin/agent-auth"
    assert log.read_text().splitlines() == [
        "pip install --quiet --upgrade pip",
        "pip install --quiet -e .[dev,infra] -e sdk",
    ]
    assert (tmp_path / ".venv" / ".installed").exists()
