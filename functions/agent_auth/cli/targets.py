"""Resolving `--dev` (the running development server) or `--stack NAME` (a deployed stack)."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
from pathlib import Path
from typing import Any

from agent_auth import schema
from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.dynamodb import aws_call
from agent_auth.clock import SystemClock
from agent_auth.devserver.clock_state import DevStateClock
from agent_auth.devserver.runner import DEV_STATE, FAKE_CREDENTIALS
from agent_auth.errors import DependencyFailure
from agent_auth.operations import OperationFailed, Target
from agent_auth.wiring import operator_target


def dev_state(state_dir: Path | None = None) -> tuple[Path, dict[str, Any], AwsClients]:
    """The running development server's state file (.agent-auth/dev.json), and clients for its moto."""
    path = (state_dir or Path.cwd()) / DEV_STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise OperationFailed(
            f"no development server found ({path} is missing): start one with `agent-auth dev` "
            "in this directory"
        ) from exc
    clients = AwsClients.with_keys(
        state["region"],
        state["aws_endpoint_url"],
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return path, state, clients


def dev_target(state_dir: Path | None = None) -> Target:
    path, state, clients = dev_state(state_dir)
    settings = state["settings"]
    target = operator_target(
        name="the development server",
        dynamodb=clients.dynamodb,
        table_names=lambda spec: str(settings[spec.env_var]),
        operator=f"{getpass.getuser()}@dev",
        issuer=state["issuer"],
        clock=DevStateClock(state["issuer"]),
    )
    try:
        target.agents.get_policy()
    except DependencyFailure as exc:
        raise OperationFailed(
            f"the development server in {path} is not answering; is `agent-auth dev` still running?"
        ) from exc
    if state.get("credentials_file"):
        target = dataclasses.replace(target, credentials=CredentialsFile(Path(state["credentials_file"])))
    return target


class CredentialsFile:
    """The secrets `agent-auth dev --credentials-out` wrote: a rotated secret replaces the agent's entry."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def update(self, client_id: str, client_secret: str) -> None:
        try:
            credentials = json.loads(self._path.read_text())
        except (FileNotFoundError, ValueError):
            credentials = {}
        credentials[client_id] = {"client_id": client_id, "client_secret": client_secret}
        # Written beside it and renamed: a reader never sees half a file, and it stays owner-only.
        staged = self._path.with_name(self._path.name + ".new")
        staged.unlink(missing_ok=True)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(json.dumps(credentials, indent=2) + "\n")
        os.replace(staged, self._path)


def stack_outputs(
    stack: str, region: str | None, needed: list[str]
) -> tuple[AwsClients, dict[str, str], str]:
    """A deployed stack's clients, its CloudFormation outputs (each of `needed` present) and the
    operator's identity, for the audit trail."""
    clients = AwsClients.default_region(region)
    if clients is None:
        raise OperationFailed("no AWS region configured: set AWS_REGION or pass --region")
    try:
        with aws_call():
            described = clients.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
            operator = clients.sts.get_caller_identity()["Arn"]
    except DependencyFailure as exc:
        raise OperationFailed(
            f"cannot read stack {stack!r} in {clients.region} ({exc}); check the name, region and credentials"
        ) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [key for key in needed if key not in outputs]
    if missing:
        raise OperationFailed(
            f"stack {stack!r} has no output {', '.join(missing)}: is it an agent-auth stack?"
        )
    return clients, outputs, str(operator)


def stack_target(stack: str, region: str | None = None) -> Target:
    needed = [spec.output_key for spec in schema.ALL_TABLES] + [schema.ISSUER_OUTPUT]
    clients, outputs, operator = stack_outputs(stack, region, needed)
    return operator_target(
        name=f"stack {stack}",
        dynamodb=clients.dynamodb,
        table_names=lambda spec: outputs[spec.output_key],
        operator=operator,
        issuer=outputs[schema.ISSUER_OUTPUT].rstrip("/"),
        clock=SystemClock(),
    )
