"""`agent-auth agents list | show NAME | disable NAME | enable NAME`: the agents and the kill switch.

Glue only: the use cases are in operations/agents.py. Tables for people, `--json` for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent_auth.cli.common import target as _target
from agent_auth.cli.common import target_options as _target_options
from agent_auth.operations.agents import disable_agent, enable_agent, list_agents, show_agent

LIST_COLUMNS = (
    ("AGENT", "client_id"),
    ("OWNER", "owner"),
    ("AUTH", "auth_method"),
    ("ROLES", "roles"),
    ("JIT RULES", "jit_rules"),
    ("DELEGATION", "delegation"),
    ("STATUS", "status"),
)


def register(commands: Any) -> None:
    """Add the `agents` command group to the CLI's subcommands (cli/main.py calls this once)."""
    agents = commands.add_parser("agents", help="list agents, show one, or disable / enable one")
    actions = agents.add_subparsers(required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="every agent of the applied policy, with its state")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    _target_options(listing)
    listing.set_defaults(run=_list)

    show = actions.add_parser(
        "show", help="one agent: auth method, roles, rules, active grants and its last token"
    )
    show.add_argument("agent", metavar="AGENT")
    show.add_argument("--json", action="store_true", help="one JSON object")
    _target_options(show)
    show.set_defaults(run=_show)

    disable = actions.add_parser(
        "disable",
        help="the kill switch: revoke every token of the agent, refuse new ones, cancel its requests",
    )
    disable.add_argument("agent", metavar="AGENT")
    _target_options(disable)
    disable.set_defaults(run=_disable)

    enable = actions.add_parser(
        "enable", help="serve a disabled agent again (tokens the disable revoked stay revoked)"
    )
    enable.add_argument("agent", metavar="AGENT")
    _target_options(enable)
    enable.set_defaults(run=_enable)


def _list(args: argparse.Namespace) -> int:
    rows = list_agents(_target(args))
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    table = [
        {
            **row,
            "roles": ", ".join(row["roles"]) or "-",
            "delegation": "yes" if row["delegation"] else "no",
        }
        for row in rows
    ]
    _print_rows(table, LIST_COLUMNS)
    return 0


def _show(args: argparse.Namespace) -> int:
    agent = show_agent(_target(args), args.agent)
    if args.json:
        print(json.dumps(agent, sort_keys=True))
        return 0
    lines = [
        ("Agent", agent["client_id"]),
        ("Owner", agent["owner"]),
        ("Auth method", agent["auth_method"]),
        ("Status", agent["status"]),
        ("Roles", ", ".join(agent["roles"]) or "-"),
        ("Standing scopes", " ".join(sorted(agent["scopes"])) or "-"),
        ("Never", " ".join(agent["never"]) or "-"),
        ("Serves audiences", ", ".join(agent["serves"].values()) or "-"),
        ("Delegation", " ".join(agent["delegation"]["scopes"]) if agent["delegation"] else "-"),
    ]
    for rule in agent["jit"]:
        by = "auto" if rule["auto"] else f"approvers {rule['approvers']}"
        once = ", single use" if rule["single_use"] else ""
        lines.append(("JIT rule", f"{' '.join(rule['scopes'])} ({by}, up to {rule['max_duration']}s{once})"))
    if agent["tokens_revoked_before"]:
        lines.append(("Tokens revoked up to", agent["tokens_revoked_before"]))
    for grant in agent["active_grants"]:
        lines.append(
            (
                "Active grant",
                f"{grant['grant_id']}: {' '.join(grant['scopes'])} until {grant['ends_at']}"
                f" (approved by {grant['approved_by']})",
            )
        )
    if not agent["active_grants"]:
        lines.append(("Active grants", "-"))
    last = agent["last_token"]
    summary = f"{last['time']} {last['grant_type']} {last['scope']} for {last['audience']}" if last else "-"
    lines.append(("Last token", summary))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label + ':':<{width + 1}}  {value}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    print(json.dumps(disable_agent(_target(args), args.agent)))
    return 0


def _enable(args: argparse.Namespace) -> int:
    print(json.dumps(enable_agent(_target(args), args.agent)))
    return 0


def _print_rows(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> None:
    widths = {key: max([len(title)] + [len(str(row[key])) for row in rows]) for title, key in columns}
    print("  ".join(title.ljust(widths[key]) for title, key in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[key]).ljust(widths[key]) for _, key in columns).rstrip())
    if not rows:
        print("(none)")
