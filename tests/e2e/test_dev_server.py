"""End to end through `agent-auth dev`: real HTTP, a real OAuth client (authlib), the CLI against it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.e2e.conftest import DevServer, fetch_json, start_dev_server
from tests.support import policy_document, rsa_key, write_policy


def verify(server: DevServer, access_token: str) -> dict[str, Any]:
    """An independent JOSE library, with the keys the server publishes over HTTP."""
    metadata = fetch_json(f"{server.issuer}/.well-known/oauth-authorization-server")
    keys = KeySet.import_key_set(fetch_json(metadata["jwks_uri"]))
    decoded = jose_jwt.decode(access_token, keys, algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    claims = dict(decoded.claims)
    assert claims["iss"] == server.issuer
    return claims


def fetch(server: DevServer, client_id: str, auth: Any, **params: str) -> dict[str, Any]:
    with OAuth2Client(
        client_id, server.credentials.get(client_id, {}).get("client_secret"), token_endpoint_auth_method=auth
    ) as client:
        if isinstance(auth, PrivateKeyJWT):
            client.register_client_auth_method(auth)
            client.client_secret = server.key.private.private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            ).decode()
        return dict(client.fetch_token(f"{server.issuer}/token", grant_type="client_credentials", **params))


def test_ready_banner_and_dev_json(dev_server: DevServer) -> None:
    state = json.loads((dev_server.workdir / ".agent-auth" / "dev.json").read_text())
    assert state["issuer"] == dev_server.issuer
    assert set(dev_server.credentials) == {"support-bot", "billing-agent"}


def test_authlib_client_secret_basic(dev_server: DevServer) -> None:
    token = fetch(dev_server, "support-bot", "client_secret_basic", scope="crm.contacts.read")
    claims = verify(dev_server, token["access_token"])
    assert claims["sub"] == "support-bot" and claims["aud"] == "https://crm.example.com"


def test_authlib_client_secret_post_with_resource(dev_server: DevServer) -> None:
    token = fetch(dev_server, "billing-agent", "client_secret_post", resource="https://billing.example.com")
    assert verify(dev_server, token["access_token"])["scope"] == "billing.invoices.read"


def test_authlib_private_key_jwt(dev_server: DevServer) -> None:
    auth = PrivateKeyJWT(f"{dev_server.issuer}/token")
    token = fetch(dev_server, "signing-agent", auth, scope="crm.contacts.write")
    assert verify(dev_server, token["access_token"])["client_id"] == "signing-agent"


def test_the_printed_curl_line_gets_a_verifiable_token(dev_server: DevServer) -> None:
    [curl] = [line.strip() for line in dev_server.banner if line.strip().startswith("curl ")]
    output = subprocess.run(
        ["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    verify(dev_server, json.loads(output)["access_token"])


def test_http_errors_are_json_and_no_store(dev_server: DevServer) -> None:
    response = httpx2.get(f"{dev_server.issuer}/token?client_secret=x")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    response = httpx2.post(f"{dev_server.issuer}/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"


def test_secret_rotate_prints_a_new_secret_once_and_revokes_the_old(dev_server: DevServer) -> None:
    old = dev_server.credentials["billing-agent"]["client_secret"]
    # --grace 0: the default now keeps the old secret for an hour (tests/e2e/test_rotation_cli.py)
    result = dev_server.cli("secret", "rotate", "billing-agent", "--grace", "0", "--dev")
    assert result.returncode == 0, result.stderr
    new = json.loads(result.stdout)
    assert new["client_id"] == "billing-agent" and new["client_secret"] != old
    endpoint = f"{dev_server.issuer}/token"
    refused = httpx2.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": "billing-agent",
            "client_secret": old,
            "scope": "billing.invoices.read",
        },
    )
    accepted = httpx2.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": "billing-agent",
            "client_secret": new["client_secret"],
            "scope": "billing.invoices.read",
        },
    )
    assert (refused.status_code, accepted.status_code) == (401, 200)


def test_rotate_refuses_a_key_based_agent(dev_server: DevServer) -> None:
    result = dev_server.cli("secret", "rotate", "signing-agent", "--dev")
    assert result.returncode == 1 and "not a client secret" in result.stderr


def test_audit_lists_decisions_newest_first(dev_server: DevServer) -> None:
    httpx2.post(
        f"{dev_server.issuer}/token",
        data={"grant_type": "client_credentials", "client_id": "support-bot", "client_secret": "nope"},
    )
    result = dev_server.cli("audit", "--dev", "--agent", "support-bot", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["decision"] == "deny" and records[0]["reason"] == "method_not_registered"
    assert [r["time"] for r in records] == sorted((r["time"] for r in records), reverse=True)
    table = dev_server.cli("audit", "--dev", "--since", "1h")
    assert table.stdout.splitlines()[0].split() == ["TIME", "ACTION", "DECISION", "WHO", "SCOPE", "REASON"]
    assert "policy.apply" in table.stdout


def test_invalid_policy_changes_nothing(dev_server: DevServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(dev_server.policy_file.read_text().replace("crm-reader", "crm-admin", 1))
    result = dev_server.cli("apply", str(bad), "--dev")
    assert result.returncode == 2
    assert re.search(rf"{re.escape(str(bad))}:\d+: ", result.stderr), result.stderr
    assert "nothing was changed" in result.stderr
    assert (
        dev_server.cli("apply", str(dev_server.policy_file), "--dev").stdout.strip().endswith("No changes.")
    )


def test_apply_dry_run_then_apply(dev_server: DevServer, tmp_path: Path) -> None:
    document = policy_document({"rsa": dev_server.key})
    document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")
    document["agents"]["support-bot"]["roles"] = ["crm-editor"]
    document["agents"]["new-bot"] = {
        "owner": "o@example.com",
        "auth": "client_secret_post",
        "roles": ["crm-reader"],
    }
    del document["agents"]["public-app"]
    changed = write_policy(tmp_path / "changed.yaml", document)

    dry = dev_server.cli("apply", str(changed), "--dev", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ agent new-bot" in dry.stdout and "~ agent support-bot (roles)" in dry.stdout
    assert "- agent public-app" in dry.stdout and "Dry run: nothing was changed." in dry.stdout
    again = dev_server.cli("apply", str(changed), "--dev", "--dry-run")
    assert "+ agent new-bot" in again.stdout, "a dry run must not apply"

    applied = dev_server.cli("apply", str(changed), "--dev")
    assert applied.returncode == 0, applied.stderr
    assert "Applied as" in applied.stdout and "new-bot has no secret yet" in applied.stdout
    token = fetch(dev_server, "support-bot", "client_secret_basic", scope="crm.contacts.write")
    assert verify(dev_server, token["access_token"])["scope"] == "crm.contacts.write"
    audit = dev_server.cli("audit", "--dev", "--json", "--since", "1h")
    applies = [json.loads(line) for line in audit.stdout.splitlines() if '"policy.apply"' in line]
    assert applies[0]["operator"].endswith("@dev") and applies[0]["details"]["agents_added"] == ["new-bot"]


def test_cli_without_a_dev_server_says_how_to_start_one(tmp_path: Path) -> None:
    from tests.e2e.conftest import BIN, _clean_env

    result = subprocess.run(
        [str(BIN / "agent-auth"), "audit", "--dev"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
        check=False,
    )
    assert result.returncode == 1 and "agent-auth dev" in result.stderr


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    server = start_dev_server(tmp_path, rsa_key())
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=20) == 0
    assert not (tmp_path / ".agent-auth" / "dev.json").exists()


@pytest.mark.parametrize("port_taken", [True])
def test_busy_port_is_a_clear_error(tmp_path: Path, port_taken: bool) -> None:
    import socket

    from tests.e2e.conftest import BIN, _clean_env

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        write_policy(tmp_path / "p.yaml", policy_document({"rsa": rsa_key()}))
        result = subprocess.run(
            [str(BIN / "agent-auth"), "dev", "--port", str(port), "--policy", "p.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
            check=False,
        )
    assert result.returncode == 1 and "cannot listen" in result.stderr and "--port" in result.stderr
