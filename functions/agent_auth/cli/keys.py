"""`agent-auth keys rotate | list | retire` (docs/key-rotation.md), and the DURATION arguments of the CLI."""

from __future__ import annotations

import argparse
import getpass
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent_auth.cli.common import target_options as _target_options
from agent_auth.signing_keys import DEFAULT_OVERLAP

if TYPE_CHECKING:
    from agent_auth.operations.keys import KeyTarget

DURATION = re.compile(r"^(\d+)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
GRACE_HELP = (
    "how long the old secret keeps working: 0 (revoke it now), 90s, 30m, 1h, 7d (default: %(default)ss)"
)


def duration(text: str) -> int:
    """Seconds, from `0`, `90`, `90s`, `30m`, `1h` or `7d`."""
    match = DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError("takes a number and an optional unit: 0, 90s, 30m, 1h, 7d")
    return int(match.group(1)) * UNITS[match.group(2)]


def register(commands: Any) -> None:
    """Adds the `keys` group to the CLI's subcommands."""
    keys = commands.add_parser("keys", help="rotate, list and retire the keys that sign access tokens")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    rotate = actions.add_parser(
        "rotate", help="publish a new signing key now; it signs once the overlap has passed"
    )
    rotate.add_argument(
        "--overlap",
        type=duration,
        metavar="DURATION",
        default=DEFAULT_OVERLAP,
        help="how long the new key is published before it signs (default: %(default)ss)",
    )
    rotate.add_argument("--json", action="store_true", help="print the rotation as JSON")
    _target_options(rotate)
    rotate.set_defaults(run=_rotate)
    listing = actions.add_parser("list", help="every signing key and its state")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    _target_options(listing)
    listing.set_defaults(run=_list)
    retire = actions.add_parser(
        "retire", help="disable the keys no longer published (every token they signed has expired)"
    )
    _target_options(retire)
    retire.set_defaults(run=_retire)


def _rotate(args: argparse.Namespace) -> int:
    from agent_auth.operations.keys import rotate_keys

    target = _key_target(args)
    rotation = rotate_keys(target, args.overlap)
    from agent_auth.timefmt import iso_seconds

    summary = {
        "new_kid": rotation.new.kid,
        "new_key_alias": rotation.new.alias,
        "published_from": iso_seconds(rotation.new.created_at),
        "signs_from": iso_seconds(rotation.new.activates_at),
        "previous_kid": rotation.previous.kid,
        "previous_unpublished_at": iso_seconds(rotation.previous.retires_at or 0),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"Rotated the signing key of {target.name} as {target.operator}:")
    print(f"  {summary['new_kid']} is published now and signs from {summary['signs_from']}")
    print(
        f"  {summary['previous_kid']} signs until then and stays published until "
        f"{summary['previous_unpublished_at']}"
    )
    where = "--dev" if args.dev else f"--stack {args.stack}"
    print(f"After that, `agent-auth keys retire {where}` disables it in KMS.")
    return 0


def _list(args: argparse.Namespace) -> int:
    from agent_auth.operations.keys import list_keys

    rows = list_keys(_key_target(args))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    columns = ("kid", "state", "alg", "signs_from", "unpublished_at", "alias")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())
    return 0


def _retire(args: argparse.Namespace) -> int:
    from agent_auth.operations.keys import retire_keys

    retired = retire_keys(_key_target(args))
    for key in retired:
        what = "disabled, deletion scheduled" if key.managed else "disabled"
        print(f"{key.kid}: {what} ({key.key_arn})")
    if not retired:
        print("No key to retire: every key is still published or already retired.")
    return 0


def _key_target(args: argparse.Namespace) -> KeyTarget:
    return _dev_key_target() if args.dev else _stack_key_target(args.stack, args.region)


def _dev_key_target(state_dir: Path | None = None) -> KeyTarget:
    from agent_auth import schema
    from agent_auth.cli.targets import dev_state
    from agent_auth.devserver.clock_state import DevStateClock
    from agent_auth.operations.keys import KeyDeployment
    from agent_auth.wiring import key_operator_target

    _, state, clients = dev_state(state_dir)
    settings = state["settings"]

    return key_operator_target(
        name="the development server",
        clients=clients,
        agents_table=settings[schema.AGENTS.env_var],
        audit_table=settings[schema.AUDIT.env_var],
        operator=f"{getpass.getuser()}@dev",
        clock=DevStateClock(state["issuer"]),
        deployment=KeyDeployment(
            alias_prefix=settings.get("SIGNING_KEY_ALIAS_PREFIX", ""),
            alg=settings["SIGNING_ALG"],
            token_lifetime=int(settings["TOKEN_LIFETIME_SECONDS"]),
            initial_key_arn=settings["SIGNING_KEY_ARN"],
        ),
    )


def _stack_key_target(stack: str, region: str | None) -> KeyTarget:
    from agent_auth import schema
    from agent_auth.cli.targets import stack_outputs
    from agent_auth.clock import SystemClock
    from agent_auth.operations.keys import KeyDeployment
    from agent_auth.wiring import key_operator_target

    needed = [schema.AGENTS.output_key, schema.AUDIT.output_key, schema.SIGNING_KEY_OUTPUT]
    clients, outputs, operator = stack_outputs(stack, region, [*needed, schema.SIGNING_ALG_OUTPUT])
    return key_operator_target(
        name=f"stack {stack}",
        clients=clients,
        agents_table=outputs[schema.AGENTS.output_key],
        audit_table=outputs[schema.AUDIT.output_key],
        operator=operator,
        clock=SystemClock(),
        deployment=KeyDeployment(
            alias_prefix=outputs.get(schema.SIGNING_KEY_ALIAS_OUTPUT, ""),
            alg=outputs[schema.SIGNING_ALG_OUTPUT],
            token_lifetime=int(outputs.get(schema.TOKEN_LIFETIME_OUTPUT) or 0),
            initial_key_arn=outputs[schema.SIGNING_KEY_OUTPUT],
        ),
    )
