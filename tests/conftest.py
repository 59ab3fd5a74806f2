"""Fixtures: moto AWS, a deployed-like environment built from agent_auth.schema, and client keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import OffsetClock, SystemClock, default_clock, set_default_clock
from agent_auth.config import Settings
from agent_auth.devserver.resources import create_resources
from agent_auth.operations import SECRET_METHODS, Target, apply_policy, rotate_secret
from agent_auth.policy.compiler import load_policy
from agent_auth.wiring import operator_target
from tests.support import ClientKey, ec_key, ed25519_key, policy_document, rsa_key, write_policy

ISSUER = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def client_keys() -> dict[str, ClientKey]:
    return {"rsa": rsa_key(), "ec": ec_key(), "ed": ed25519_key()}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield AwsClients(REGION)


@dataclass
class Deployment:
    settings: Settings
    clients: AwsClients
    secrets: dict[str, str]
    keys: dict[str, ClientKey]
    target: Target
    policy_file: Path

    def audit_records(self) -> list[dict[str, Any]]:
        """Every audit record, newest first."""
        from agent_auth.adapters.dynamodb import from_item

        items = [from_item(i) for i in self.scan(self.settings.audit_table)]
        return sorted(items, key=lambda r: str(r["sk"]), reverse=True)

    def scan(self, table: str) -> list[dict[str, Any]]:
        return self.clients.dynamodb.scan(TableName=table)["Items"]  # type: ignore[no-any-return]


def _clear_handler_caches() -> None:
    from agent_auth.web.function import Container

    Container.reset_all()


def make_deployment(
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    keys: dict[str, ClientKey],
    alg: str = "RS256",
) -> Deployment:

    settings = create_resources(aws.dynamodb, aws.kms, issuer=ISSUER, region=REGION, alg=alg, ses=aws.ses)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    _clear_handler_caches()
    env = settings.to_env()
    target = operator_target(
        name="test",
        dynamodb=aws.dynamodb,
        table_names=lambda spec: env[spec.env_var],
        operator="tester",
        issuer=ISSUER,
        clock=default_clock(),
    )
    policy_file = write_policy(tmp_path / "policy.yaml", policy_document(keys))
    policy = load_policy(str(policy_file))
    apply_policy(target, policy)
    secrets = {
        name: rotate_secret(target, name)["client_secret"]
        for name, item in policy.agents.items()
        if item["auth_method"] in SECRET_METHODS
    }
    return Deployment(settings, aws, secrets, keys, target, policy_file)


@pytest.fixture
def clock() -> Iterator[OffsetClock]:
    """The handlers' clock, movable: built before the handlers, which capture it when first used."""
    offset = OffsetClock()
    set_default_clock(offset)
    _clear_handler_caches()
    yield offset
    set_default_clock(SystemClock())
    _clear_handler_caches()


@pytest.fixture
def deployment(
    aws: AwsClients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_keys: dict[str, ClientKey]
) -> Iterator[Deployment]:
    yield make_deployment(aws, monkeypatch, tmp_path, client_keys)
    _clear_handler_caches()
