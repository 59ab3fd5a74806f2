"""Parsing-only behaviours of `agent-auth` (in process): --version, defaults in --help, exit codes of
usage errors with --detailed-exitcode, and the progress line (only on a terminal, only when slow)."""

from __future__ import annotations

import io
import time

import pytest

from agent_auth.cli.common import progress
from agent_auth.cli.main import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("agent-auth ")


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["dev"], ["(default: 127.0.0.1)", "(default: 8000)", "(default: examples/policy.yaml)"]),
        (["audit"], ["(default: 24h)", "(default: 100)"]),
        (["requests"], ["(default: 50)"]),
    ],
)
def test_help_shows_defaults(
    command: list[str], shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # help wraps lines
    for default in shown:
        assert default in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_a_usage_error_is_1_with_detailed_exitcode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "--detailed-exitcode", "--dev"]) == 1
    with pytest.raises(SystemExit) as stop:
        main(["apply", "--dev"])
    assert stop.value.code == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_appears_on_a_terminal_only_once_the_work_is_slow() -> None:
    slow, quick, piped = Terminal(), Terminal(), io.StringIO()
    with progress("applying", stream=slow, after=0.05):
        time.sleep(0.3)
    with progress("applying", stream=quick, after=5):
        pass
    with progress("applying", stream=piped, after=0):
        time.sleep(0.1)
    assert slow.getvalue().startswith("\rapplying... 0s") and slow.getvalue().endswith("\r\033[K")
    assert quick.getvalue() == "" and piped.getvalue() == ""
