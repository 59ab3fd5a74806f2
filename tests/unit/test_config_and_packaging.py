"""Configuration read at run time with no silent defaults; Lambda pins equal the project's pins."""

from __future__ import annotations

import re
import tomllib

import pytest

from agent_auth import wiring
from agent_auth.config import ConfigError, Settings
from agent_auth.grant_catalog import grant_type_names
from tests.support import ROOT
from tests.unit.fakes import LocalSigner

ENV = {
    "ISSUER": "https://auth.example.com/",
    "AWS_REGION": "eu-west-1",
    "AGENTS_TABLE": "a",
    "REPLAY_TABLE": "r",
    "AUDIT_TABLE": "au",
    "REQUESTS_TABLE": "rq",
    "GRANTS_TABLE": "g",
    "SIGNINS_TABLE": "si",
    "CODES_TABLE": "c",
    "REFRESH_TABLE": "rf",
    "CONSENTS_TABLE": "cs",
    "SIGNING_KEY_ARN": "arn:aws:kms:eu-west-1:1:key/k",
}


def test_round_trip_and_defaults() -> None:
    settings = Settings.from_env(ENV)
    assert settings.issuer == "https://auth.example.com" and settings.token_lifetime == 900
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize("missing", sorted(ENV))
def test_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(("name", "value"), [("SIGNING_ALG", "HS256"), ("TOKEN_LIFETIME_SECONDS", "-5")])
def test_invalid_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**ENV, name: value})


def test_lambda_requirements_match_project_pins() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.match(r"([\w.-]+)==(\S+)", d).groups() for d in project)  # type: ignore[union-attr]
    lines = (ROOT / "functions" / "requirements.txt").read_text().splitlines()
    lambda_pins = [line for line in lines if line and not line.startswith("#")]
    assert lambda_pins, "the Lambda bundle needs its requirements"
    for line in lambda_pins:
        name, version = line.split("==")
        assert pins.get(name) == version, f"{name} is pinned differently in pyproject.toml"


def test_advertised_grant_types_are_the_registered_ones() -> None:
    # The token function's settings: the exchange grant's revocation check reads the revocations table
    registry = wiring.grant_type_registry(
        Settings.from_env({**ENV, "REVOCATIONS_TABLE": "rv"}), LocalSigner()
    )
    assert registry.grant_types == grant_type_names()
