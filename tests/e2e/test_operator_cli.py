"""The CLI as operators of other tools expect it, run as the real `agent-auth` against `agent-auth dev`:
a closed pipe, the plan as JSON, terraform's detailed exit codes, `grants list`, a revoked grant in
`requests`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.conftest import BIN, DevServer, _clean_env
from tests.support import policy_document, write_policy


def into_closed_pipe(server: DevServer, *args: str) -> tuple[int, str]:
    """The command with its stdout on a pipe whose reader is gone, as after `| head` has exited."""
    read, write = os.pipe()
    os.close(read)
    process = subprocess.Popen(
        [str(BIN / "agent-auth"), *args],
        cwd=server.workdir,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    os.close(write)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        # argparse drops help it cannot write (its own OSError handling) and exits 0
        (("--help",), 0),
        (("audit", "--dev", "--since", "1h"), 141),  # as a shell reports a tool SIGPIPE ended
        (("audit", "--dev", "--since", "1h", "--json"), 141),
        (("grants", "list", "--dev"), 141),
    ],
    ids=["help", "audit-table", "audit-json", "grants-table"],
)
def test_a_closed_pipe_ends_quietly(dev_server: DevServer, args: tuple[str, ...], code: int) -> None:
    status, err = into_closed_pipe(dev_server, *args)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert status == code


def test_head_reads_the_first_line_of_a_real_pipeline(dev_server: DevServer) -> None:
    shell = subprocess.run(
        f"set -o pipefail; '{BIN / 'agent-auth'}' audit --dev --since 1h | head -n 1",
        shell=True,
        executable="/bin/bash",
        cwd=dev_server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
        check=False,
    )
    assert shell.stdout.split() == ["TIME", "ACTION", "DECISION", "WHO", "SCOPE", "REASON"]
    assert "Traceback" not in shell.stderr and "BrokenPipeError" not in shell.stderr, shell.stderr
    assert shell.returncode in (0, 141)  # 141 when head left before the last line was written


@pytest.fixture
def changed_policy(dev_server: DevServer) -> Iterator[Path]:
    """A policy giving billing-agent another role; the server's own policy is applied again after."""
    document: dict[str, Any] = policy_document({"rsa": dev_server.key})
    document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")
    document["agents"]["billing-agent"]["roles"] = ["billing-reader"]
    path = write_policy(dev_server.workdir / "changed.yaml", document)
    yield path
    restored = dev_server.cli("apply", str(dev_server.policy_file), "--dev")
    assert restored.returncode == 0, restored.stderr


def test_apply_dry_run_prints_the_plan_as_json_and_exits_as_terraform_plan(
    dev_server: DevServer, changed_policy: Path
) -> None:
    # Given the running policy / When it is planned again / Then no changes: exit 0
    same = dev_server.cli(
        "apply", str(dev_server.policy_file), "--dev", "--dry-run", "--json", "--detailed-exitcode"
    )
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["changes"] is False

    # When a changed policy is planned / Then the JSON names the change, nothing is applied, exit 2
    planned = dev_server.cli(
        "apply", str(changed_policy), "--dev", "--dry-run", "--json", "--detailed-exitcode"
    )
    assert planned.returncode == 2, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["changes"] is True and plan["applied"] is False and plan["dry_run"] is True
    assert plan["agents_changed"] == {"billing-agent": ["roles"]}
    assert plan["agents_added"] == [] and plan["agents_removed"] == []
    again = dev_server.cli("apply", str(changed_policy), "--dev", "--dry-run", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["agents_changed"] == {
        "billing-agent": ["roles"]
    }

    # When it is applied with --detailed-exitcode / Then 2 (there were changes), and then there are none
    applied = dev_server.cli("apply", str(changed_policy), "--dev", "--json", "--detailed-exitcode")
    assert applied.returncode == 2 and json.loads(applied.stdout)["applied"] is True, applied.stderr
    after = dev_server.cli("apply", str(changed_policy), "--dev", "--dry-run", "--detailed-exitcode")
    assert after.returncode == 0 and after.stdout.strip().endswith("No changes."), after.stdout


def test_with_detailed_exitcode_every_error_is_1(dev_server: DevServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nagents: {x: {owner: nobody}}\n")
    invalid = dev_server.cli("apply", str(bad), "--dev", "--dry-run", "--detailed-exitcode")
    assert invalid.returncode == 1 and "problem(s) in the policy" in invalid.stderr
    assert dev_server.cli("apply", str(bad), "--dev", "--dry-run").returncode == 2  # unchanged without it
    usage = dev_server.cli("apply", "--dev", "--detailed-exitcode")  # no file
    assert usage.returncode == 1 and "usage:" in usage.stderr


def test_grants_list_shows_active_grants_and_requests_shows_a_revoked_one(dev_server: DevServer) -> None:
    # Given billing-agent's request, approved at once by its auto rule
    credentials = {
        "client_id": "billing-agent",
        "client_secret": dev_server.credentials["billing-agent"]["client_secret"],
    }
    asked = httpx2.post(
        f"{dev_server.issuer}/access-requests",
        data={**credentials, "scope": "crm.contacts.write", "reason": "Listing test", "duration": "600"},
    )
    assert asked.status_code == 200 and asked.json()["status"] == "approved", asked.text
    grant_id = asked.json()["request_id"]

    # When the operator lists the grants / Then it is there: agent, scopes, end, approver
    def grants(*extra: str) -> list[dict[str, Any]]:
        listed = dev_server.cli("grants", "list", "--dev", "--json", *extra)
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]

    [row] = [g for g in grants() if g["grant_id"] == grant_id]
    assert row["client_id"] == "billing-agent" and row["scopes"] == ["crm.contacts.write"]
    assert row["approved_by"] == "auto" and row["status"] == "active" and row["single_use"] is True
    assert row["audience"] == "https://crm.example.com" and row["ends_at"].endswith("Z")
    table = dev_server.cli("grants", "list", "--dev")
    assert table.stdout.split()[:7] == ["GRANT", "AGENT", "SCOPE", "AUDIENCE", "ENDS", "APPROVED", "BY"]
    assert grant_id in table.stdout

    # When it is revoked / Then it leaves the list (kept, as revoked, with --all) and its request says so
    assert dev_server.cli("grants", "revoke", grant_id, "--dev").returncode == 0
    assert grant_id not in [g["grant_id"] for g in grants()]
    assert [g["status"] for g in grants("--all") if g["grant_id"] == grant_id] == ["revoked"]
    listed = dev_server.cli("requests", "--dev", "--json")
    [request] = [json.loads(line) for line in listed.stdout.splitlines() if grant_id in line]
    assert request["status"] == "revoked"
    assert "revoked" in next(
        line for line in dev_server.cli("requests", "--dev").stdout.splitlines() if grant_id in line
    )


def test_requests_and_grants_help_show_their_defaults(dev_server: DevServer) -> None:
    shown = dev_server.cli("requests", "--help")
    assert shown.returncode == 0 and "(default: 50)" in shown.stdout
    version = subprocess.run(
        [str(BIN / "agent-auth"), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("agent-auth ")
