"""`agent-auth requests` and `agent-auth grants list|revoke`: just-in-time access as operators see it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent_auth.cli.common import json_lines, print_rows, progress, target, target_options, time_text
from agent_auth.operations import list_grants, list_requests, revoke_grant

REQUEST_INTERNAL = ("pk", "purge_at", "digest")


def register(commands: Any) -> None:
    requests = commands.add_parser("requests", help="list just-in-time access requests, newest first")
    requests.add_argument("--limit", type=int, default=50, help="at most this many requests")
    requests.add_argument("--json", action="store_true", help="one JSON object per line")
    target_options(requests)
    requests.set_defaults(run=_requests)

    grants = commands.add_parser("grants", help="list and end just-in-time grants")
    grant_commands = grants.add_subparsers(required=True, metavar="ACTION")
    listing = grant_commands.add_parser(
        "list", help="the grants tokens can draw on now: agent, scopes, end, approver"
    )
    listing.add_argument(
        "--all", action="store_true", help="also the revoked, used and ended grants still stored"
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    target_options(listing)
    listing.set_defaults(run=_grants)
    revoke = grant_commands.add_parser("revoke", help="end a grant now (its id is the request id)")
    revoke.add_argument("grant_id", metavar="GRANT_ID")
    target_options(revoke)
    revoke.set_defaults(run=_revoke)


def _requests(args: argparse.Namespace) -> int:
    where = target(args)
    with progress("reading access requests"):
        rows = list_requests(where, args.limit)
    if args.json:
        json_lines({k: v for k, v in row.items() if k not in REQUEST_INTERNAL} for row in rows)
        return 0
    table = [
        {
            "id": r["request_id"],
            "agent": r["client_id"],
            "scope": " ".join(r["scopes"]),
            "status": r["status"],
            "by": r.get("decided_by") or "",
            "asked": time_text(r["created_at"]),
            "for": f"{int(r['duration']) // 60}m",
        }
        for r in rows
    ]
    print_rows(
        table,
        (
            ("REQUEST", "id"),
            ("AGENT", "agent"),
            ("SCOPE", "scope"),
            ("FOR", "for"),
            ("STATUS", "status"),
            ("DECIDED BY", "by"),
            ("ASKED", "asked"),
        ),
    )
    return 0


def _grants(args: argparse.Namespace) -> int:
    where = target(args)
    with progress("reading grants"):
        rows = list_grants(where, include_inactive=args.all)
    if args.json:
        json_lines(rows)
        return 0
    table = [
        {
            **r,
            "scope": " ".join(r["scopes"]),
            "by": r["approved_by"] or "",
            "once": "yes" if r["single_use"] else "",
        }
        for r in rows
    ]
    columns = [
        ("GRANT", "grant_id"),
        ("AGENT", "client_id"),
        ("SCOPE", "scope"),
        ("AUDIENCE", "audience"),
        ("ENDS", "ends_at"),
        ("APPROVED BY", "by"),
        ("SINGLE USE", "once"),
    ]
    if args.all:
        columns.append(("STATUS", "status"))
    print_rows(table, tuple(columns))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    print(json.dumps(revoke_grant(target(args), args.grant_id)))
    return 0
