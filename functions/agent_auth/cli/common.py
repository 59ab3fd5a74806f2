"""What every `agent-auth` command shares: where it goes (--dev / --stack), tables, JSON lines, exit codes,
and the progress line on a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from agent_auth.operations import Target

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CHANGES = 2
"""`apply --detailed-exitcode`: the plan has changes (as `terraform plan -detailed-exitcode`)."""
EXIT_PIPE = 128 + 13
"""The reader of stdout went away (`| head`): what a shell reports for a tool that SIGPIPE ended."""
PROGRESS_AFTER = 1.0
"""Seconds of work before a progress line appears: quick commands never draw one."""


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help, as ArgumentDefaultsHelpFormatter does, except for
    the defaults that say nothing (None, False: an unset option, an off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if shown and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """Every parser and subparser (add_subparsers reuses this class) formats help with HelpFormatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def target_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument("--dev", action="store_true", help="the development server running in this directory")
    where.add_argument(
        "--stack", metavar="NAME", help="a deployed stack, found from its CloudFormation outputs"
    )
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration)")


def target(args: argparse.Namespace) -> Target:
    from agent_auth.cli.targets import dev_target, stack_target

    if args.dev:
        return dev_target()
    with progress(f"reading stack {args.stack}"):
        return stack_target(args.stack, args.region)


def where(args: argparse.Namespace) -> str:
    """The target option to repeat in a suggested command."""
    return "--dev" if args.dev else f"--stack {args.stack}"


def json_lines(rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    for row in rows:
        print(json.dumps(row, sort_keys=True))


def print_rows(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> None:
    widths = {key: max([len(title)] + [len(str(row[key])) for row in rows]) for title, key in columns}
    print("  ".join(title.ljust(widths[key]) for title, key in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[key]).ljust(widths[key]) for _, key in columns).rstrip())
    if not rows:
        print("(none)")


def time_text(epoch: Any) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def progress(label: str, stream: TextIO | None = None, after: float = PROGRESS_AFTER) -> Iterator[None]:
    """`label... 3s` on stderr, redrawn every half second once the block has run `after` seconds, and
    erased when it ends. Only on a terminal: piped or captured output never has it, and stdout (the
    result) is never touched."""
    out = stream or sys.stderr
    if not out.isatty():
        yield
        return
    done = threading.Event()
    drawn = threading.Event()
    started = time.monotonic()

    def draw() -> None:
        if done.wait(after):
            return
        while True:
            out.write(f"\r{label}... {time.monotonic() - started:.0f}s")
            out.flush()
            drawn.set()
            if done.wait(0.5):
                return

    thread = threading.Thread(target=draw, name="agent-auth-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if drawn.is_set():
            out.write("\r\033[K")
            out.flush()
