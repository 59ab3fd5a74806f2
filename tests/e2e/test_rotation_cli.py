"""Rotation as an operator does it: the real `agent-auth keys` and `agent-auth secret rotate` commands against
`agent-auth dev`, with /jwks.json and /token over HTTP and the development clock moved instead of waiting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from agent_auth.oauth.jose import b64url_decode
from agent_auth.signing_keys import KEY_CACHE_SECONDS
from tests.e2e.conftest import DevServer, start_dev_server, stop_dev_server
from tests.support import rsa_key

OVERLAP = 900


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    # Its own server: these tests move its clock by hours
    started = start_dev_server(tmp_path_factory.mktemp("rotation"), rsa_key())
    yield started
    stop_dev_server(started.process)


def advance(server: DevServer, seconds: int) -> None:
    assert httpx2.post(f"{server.issuer}/_dev/clock", json={"advance": seconds}).status_code == 200


def token(server: DevServer, secret: str | None = None) -> httpx2.Response:
    credentials = server.credentials["billing-agent"]  # client_secret_post
    return httpx2.post(
        f"{server.issuer}/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": secret or credentials["client_secret"],
            "scope": "billing.invoices.read",
        },
    )


def access_token(server: DevServer) -> str:
    response = token(server)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def jwks(server: DevServer) -> dict[str, Any]:
    response = httpx2.get(f"{server.issuer}/jwks.json")
    assert response.status_code == 200
    return dict(response.json())


def kids(server: DevServer) -> set[str]:
    return {k["kid"] for k in jwks(server)["keys"]}


def kid(jwt: str) -> str:
    return str(json.loads(b64url_decode(jwt.split(".", maxsplit=1)[0]))["kid"])


def verifies(server: DevServer, jwt: str) -> bool:
    """The signature checks against /jwks.json as served now (the token's own expiry is not the point)."""
    try:
        jose_jwt.decode(jwt, KeySet.import_key_set(jwks(server)), algorithms=["RS256"])
    except (JoseError, ValueError):
        return False
    return True


def cli_json(server: DevServer, *args: str) -> list[dict[str, Any]]:
    result = server.cli(*args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_keys_rotate_publishes_first_switches_later_and_retires_last(server: DevServer) -> None:
    # Given a token signed before the rotation, and the JWKS with its key only
    old = access_token(server)
    assert kids(server) == {kid(old)}
    headers = httpx2.get(f"{server.issuer}/jwks.json").headers
    assert headers["cache-control"] == "public, max-age=300"  # below half of any allowed overlap

    # When the operator rotates with the real CLI
    [rotation] = cli_json(server, "keys", "rotate", "--dev", "--overlap", f"{OVERLAP}s", "--json")
    assert rotation["previous_kid"] == kid(old)
    # Then once the server's key cache has turned over, the new key is published, and does not sign yet
    advance(server, KEY_CACHE_SECONDS)
    assert kids(server) == {kid(old), rotation["new_kid"]}
    during = access_token(server)
    assert kid(during) == kid(old)
    states = {row["kid"]: row["state"] for row in cli_json(server, "keys", "list", "--dev", "--json")}
    assert states == {kid(old): "active", rotation["new_kid"]: "pending"}

    # When the overlap has passed / Then the new key signs; tokens of both keys verify against /jwks.json
    advance(server, OVERLAP)
    new = access_token(server)
    assert kid(new) == rotation["new_kid"]
    assert verifies(server, old) and verifies(server, during) and verifies(server, new)

    # And the old key stays published while a token it signed may still be valid (900 s lifetime)
    advance(server, 900)
    assert kid(old) in kids(server) and verifies(server, during)
    retire = server.cli("keys", "retire", "--dev")
    assert retire.returncode == 0 and "No key to retire" in retire.stdout, retire.stdout
    # When every token it signed has expired (lifetime + skew + cache) / Then it is gone, and retired in KMS
    advance(server, 2 * KEY_CACHE_SECONDS + 60)
    assert kids(server) == {rotation["new_kid"]}
    assert verifies(server, new) and not verifies(server, during)
    retire = server.cli("keys", "retire", "--dev")
    assert retire.returncode == 0 and f"{kid(old)}: disabled" in retire.stdout, retire.stdout
    states = {row["kid"]: row["state"] for row in cli_json(server, "keys", "list", "--dev", "--json")}
    assert states == {kid(old): "retired", rotation["new_kid"]: "active"}


def test_secret_rotate_keeps_the_old_secret_for_the_grace_and_updates_credentials(server: DevServer) -> None:
    old = server.credentials["billing-agent"]["client_secret"]
    # When the operator rotates with the default grace (one hour)
    [printed] = cli_json(server, "secret", "rotate", "billing-agent", "--dev")
    # Then the credentials file holds the new secret, and both secrets get tokens
    assert server.credentials["billing-agent"]["client_secret"] == printed["client_secret"] != old
    assert token(server).status_code == 200
    assert token(server, old).status_code == 200
    # When the grace is over / Then the old secret is refused
    advance(server, 3600)
    assert token(server, old).status_code == 401
    assert token(server).status_code == 200


def test_secret_rotate_with_grace_zero_revokes_at_once(server: DevServer) -> None:
    old = server.credentials["billing-agent"]["client_secret"]
    [printed] = cli_json(server, "secret", "rotate", "billing-agent", "--grace", "0", "--dev")
    assert token(server, old).status_code == 401
    assert token(server, printed["client_secret"]).status_code == 200
    assert server.credentials["billing-agent"]["client_secret"] == printed["client_secret"]
