"""agent-auth: run the development server, apply policy, rotate secrets, read the audit trail."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from agent_auth.audit import DEFAULT_LIMIT
from agent_auth.cli import agents, jit
from agent_auth.cli.common import (
    EXIT_CHANGES,
    EXIT_FAILED,
    EXIT_PIPE,
    EXIT_USAGE,
    Parser,
    print_rows,
    progress,
    target,
    target_options,
    time_text,
    where,
)
from agent_auth.cli.keys import GRACE_HELP, duration
from agent_auth.cli.keys import register as register_key_commands
from agent_auth.errors import DependencyFailure
from agent_auth.operations import (
    ApplyResult,
    OperationFailed,
    Target,
    apply_policy,
    list_consents,
    read_audit,
    revoke_consent,
    rotate_secret,
)
from agent_auth.operations.secrets import DEFAULT_GRACE
from agent_auth.policy.compiler import load_policy
from agent_auth.policy.source import PolicyInvalid

SINCE = re.compile(r"^(\d+)([smhd])$")


def main(argv: Sequence[str] | None = None) -> int:
    """The exit status: 0 done, 1 refused or failed, 2 a usage error or an invalid policy (and, with
    `apply --detailed-exitcode`, 2 means changes and every error is 1), 130 Ctrl-C, 141 stdout closed."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            return _run(arguments)
        finally:
            sys.stdout.flush()  # here, so a closed pipe is seen now rather than at exit
    except BrokenPipeError:
        # `agent-auth ... | head`: the reader has what it wanted. Point stdout at /dev/null so the
        # interpreter's last flush finds nowhere to fail, and end quietly (no traceback).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


def _run(arguments: list[str]) -> int:
    detailed = "--detailed-exitcode" in arguments
    try:
        args = _parser().parse_args(arguments)
    except SystemExit as stop:
        if detailed and stop.code == EXIT_USAGE:
            return EXIT_FAILED  # 2 is reserved for "changes"
        raise
    try:
        return int(args.run(args))
    except PolicyInvalid as invalid:
        print(f"{len(invalid.problems)} problem(s) in the policy; nothing was changed:", file=sys.stderr)
        for problem in invalid.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_FAILED if detailed else EXIT_USAGE
    except OperationFailed as failed:
        print(f"agent-auth: {failed}", file=sys.stderr)
        return EXIT_FAILED
    except DependencyFailure as failure:
        print(f"agent-auth: AWS call failed ({failure}); nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _version() -> str:
    try:
        return metadata.version("agent-auth")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="agent-auth", description=__doc__)
    parser.add_argument("--version", action="version", version=f"agent-auth {_version()}")
    # Each command group registers itself on `commands` (a subparsers object): one line each below.
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="run the development server (moto stands in for AWS)")
    dev.add_argument("--host", default="127.0.0.1", help="the address to listen on; keep it on loopback")
    dev.add_argument("--port", type=int, default=8000, help="the port to listen on (0: any free one)")
    dev.add_argument("--policy", default="examples/policy.yaml", metavar="FILE", help="the policy to apply")
    dev.add_argument(
        "--credentials-out",
        metavar="FILE",
        help="write the generated secrets of secret-based agents here, as JSON",
    )
    dev.add_argument(
        "--signing-alg", choices=("RS256", "ES256"), default="RS256", help="the token signing algorithm"
    )
    dev.set_defaults(run=_dev)

    apply = commands.add_parser("apply", help="apply a policy file (prints the plan)")
    apply.add_argument("file", help="the policy file (YAML)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    apply.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    apply.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when the plan has changes, 0 when it has none, 1 on errors (as terraform plan)",
    )
    _target_options(apply)
    apply.set_defaults(run=_apply)

    secret = commands.add_parser("secret", help="manage client secrets")
    secret_commands = secret.add_subparsers(required=True, metavar="ACTION")
    rotate = secret_commands.add_parser(
        "rotate", help="issue a new secret (printed once); the old one works until the grace period ends"
    )
    rotate.add_argument("agent")
    rotate.add_argument("--grace", type=duration, default=DEFAULT_GRACE, metavar="DURATION", help=GRACE_HELP)
    _target_options(rotate)
    rotate.set_defaults(run=_rotate)

    jit.register(commands)

    consents = commands.add_parser(
        "consents", help="list what users allowed agents to do for them (delegated access)"
    )
    consents.add_argument("--user", metavar="EMAIL", help="only this user's consents")
    consents.add_argument("--json", action="store_true", help="one JSON object per line")
    # Not required here: `consents revoke` takes its own, and a bare `consents` is checked in _consents.
    _target_options(consents, required=False)
    consents.set_defaults(run=_consents)
    consent_commands = consents.add_subparsers(metavar="ACTION")
    withdraw = consent_commands.add_parser(
        "revoke", help="withdraw a user's consent for an agent: its refresh tokens stop working"
    )
    withdraw.add_argument("--user", metavar="EMAIL", required=True)
    withdraw.add_argument("--agent", metavar="CLIENT_ID", required=True)
    _target_options(withdraw)
    withdraw.set_defaults(run=_revoke_consent)

    register_key_commands(commands)

    audit = commands.add_parser("audit", help="print audit records, newest first")
    audit.add_argument("--agent", metavar="CLIENT_ID", help="only this agent's records")
    audit.add_argument("--user", metavar="EMAIL", help="only records acting for this user")
    audit.add_argument("--since", default="24h", help="how far back: 30m, 1h, 7d")
    audit.add_argument(
        "--limit", type=_positive, default=DEFAULT_LIMIT, help="at most this many records, the newest"
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    _target_options(audit)
    audit.set_defaults(run=_audit)
    agents.register(commands)
    return parser


# The shared helpers under their earlier names, for command modules written against them.
_target_options = target_options
_target = target
_print_rows = print_rows
_time = time_text


def _apply(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)  # invalid: nothing is read from or written to the target
    destination = _target(args)
    with progress("planning" if args.dry_run else "applying the policy"):
        result = apply_policy(destination, policy, dry_run=args.dry_run)
    changed = not result.plan.is_empty
    if args.json:
        print(json.dumps(_plan_json(destination.name, args, result), sort_keys=True))
    else:
        _print_plan(destination, args, result)
    return EXIT_CHANGES if args.detailed_exitcode and changed else 0


def _plan_json(name: str, args: argparse.Namespace, result: ApplyResult) -> dict[str, Any]:
    """The plan as data: what `lines()` prints, with the changed fields of each agent."""
    plan = result.plan
    return {
        "target": name,
        "file": args.file,
        "changes": not plan.is_empty,
        "applied": result.applied,
        "dry_run": args.dry_run,
        **plan.summary(),
        "agents_changed": {agent: fields for agent, fields in sorted(plan.agents_changed.items())},
        "agents_without_secret": result.agents_without_secret,
    }


def _print_plan(destination: Target, args: argparse.Namespace, result: ApplyResult) -> None:
    print(f"Plan for {destination.name} ({args.file}):")
    for line in result.plan.lines():
        print(line)
    if result.plan.is_empty:
        print("No changes.")
    elif args.dry_run:
        print("Dry run: nothing was changed.")
    else:
        print(f"Applied as {destination.operator}.")
    for name in result.agents_without_secret:
        print(f"{name} has no secret yet: run `agent-auth secret rotate {name} {where(args)}`")


def _rotate(args: argparse.Namespace) -> int:
    print(json.dumps(rotate_secret(_target(args), args.agent, grace=args.grace)))
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("takes a whole number, 1 or more")
    return int(text)


def _audit(args: argparse.Namespace) -> int:
    match = SINCE.match(args.since)
    if not match:
        print("agent-auth: --since takes a number and a unit: 30m, 1h, 7d", file=sys.stderr)
        return EXIT_USAGE
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    pages = read_audit(_target(args), within=seconds, agent=args.agent, user=args.user, limit=args.limit)
    if args.json:
        for page in pages:
            for record in page:
                print(json.dumps(_public(record), sort_keys=True))
            sys.stdout.flush()
    else:
        _print_audit_table(pages)
    return 0


AUDIT_INTERNAL = ("pk", "sk", "hour", "user_key", "day", "expires_at")
"""Keys and retention, not part of the record (the adapter leaves them out already)."""


def _public(record: dict[str, Any], internal: tuple[str, ...] = AUDIT_INTERNAL) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in internal}


def _consents(args: argparse.Namespace) -> int:
    if not args.dev and not args.stack:
        print("agent-auth consents: one of --dev or --stack NAME is required", file=sys.stderr)
        return EXIT_USAGE
    destination = _target(args)
    with progress("reading consents"):
        rows = list_consents(destination, args.user)
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    table = [{**r, "scope": " ".join(r["scopes"])} for r in rows]
    _print_rows(
        table,
        (
            ("USER", "user"),
            ("AGENT", "client_id"),
            ("AUDIENCE", "audience"),
            ("SCOPE", "scope"),
            ("GRANTED", "granted_at"),
            ("STATUS", "status"),
        ),
    )
    return 0


def _revoke_consent(args: argparse.Namespace) -> int:
    print(json.dumps(revoke_consent(_target(args), args.user, args.agent)))
    return 0


COLUMNS = (
    ("TIME", "time"),
    ("ACTION", "action"),
    ("DECISION", "decision"),
    ("WHO", "who"),
    ("SCOPE", "scope"),
    ("REASON", "reason"),
)


def _audit_row(r: dict[str, Any]) -> dict[str, str]:
    """WHO: the agent, the user it acts for and the actor chain (most recent first), and the operator
    or approver; REASON: the reason, the policy rule that decided and the token family."""
    who = str(r.get("client_id") or "")
    if r.get("user"):
        who = f"{who} for {r['user']}" if who else str(r["user"])
    if r.get("actor_chain"):
        who += " via " + ", ".join(map(str, r["actor_chain"]))
    actor = r.get("operator") or r.get("approver")
    if actor:
        who = f"{who} (by {actor})" if who else str(actor)
    why = [str(r["reason"])] if r.get("reason") else []
    if r.get("policy_rule"):
        why.append(f"rule {r['policy_rule']}")
    if r.get("token_family"):
        why.append(f"family {r['token_family']}")
    return {
        "time": str(r.get("time", "")),
        "action": str(r.get("action", "")),
        "decision": str(r.get("decision", "")),
        "who": who.strip(),
        "scope": str(r.get("scope_granted") or r.get("scope_requested") or ""),
        "reason": "; ".join(why),
    }


def _print_audit_table(pages: Iterable[list[dict[str, Any]]]) -> None:
    """Printed a page at a time: the columns are as wide as the first page needs, and a longer value
    later only pushes the rest of its own line."""
    widths: dict[str, int] | None = None
    for page in pages:
        rows = [_audit_row(r) for r in page]
        if widths is None:
            widths = {key: max([len(title)] + [len(row[key]) for row in rows]) for title, key in COLUMNS}
            print("  ".join(title.ljust(widths[key]) for title, key in COLUMNS).rstrip())
        for row in rows:
            print("  ".join(row[key].ljust(widths[key]) for _, key in COLUMNS).rstrip())
        sys.stdout.flush()
    if widths is None:
        _print_rows([], COLUMNS)


def _dev(args: argparse.Namespace) -> int:
    from agent_auth.devserver.runner import DevEnvironment

    env = DevEnvironment(
        host=args.host, port=args.port, policy_file=args.policy, signing_alg=args.signing_alg
    )
    try:
        env.start()
    except OSError as exc:
        raise OperationFailed(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port"
        ) from exc
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if args.credentials_out:
            env.write_credentials(args.credentials_out)
        _print_ready(env, args.credentials_out)
        env.wait()
    except KeyboardInterrupt:
        print("\nagent-auth dev: stopping", file=sys.stderr)
    finally:
        env.stop()
    return 0


def _print_ready(env: Any, credentials_out: str | None) -> None:
    print(f"agent-auth dev: policy {env.policy_file} applied at {datetime.now(UTC):%H:%M:%S} UTC")
    if credentials_out:
        names = ", ".join(env.credentials) or "no agents"
        print(f"agent-auth dev: secrets of {names} written to {credentials_out}")
    for name, creds in env.credentials.items():
        print(
            f"\nGet a token for {name}:\n"
            f"  curl -s -u '{name}:{creds['client_secret']}' -d grant_type=client_credentials "
            f"{env.issuer}/token"
        )
        break
    print(f"\nagent-auth dev: ready at {env.issuer}  (Ctrl-C stops)", flush=True)
