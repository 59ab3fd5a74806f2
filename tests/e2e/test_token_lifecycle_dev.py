"""The token lifecycle end to end: a real OAuth client (authlib) introspects (RFC 7662) and revokes
(RFC 7009) through `agent-auth dev`, and the real `agent-auth agents` command lists agents and throws
the kill switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.e2e.conftest import DevServer, fetch_json, start_dev_server, stop_dev_server
from tests.e2e.test_jit_flow import advance
from tests.support import policy_document, rsa_key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    key = rsa_key()
    document = policy_document({"rsa": key})
    document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")
    # billing-agent acts for the CRM's resource server: it may introspect the CRM's tokens
    document["audiences"]["crm"]["resource_servers"] = ["billing-agent"]
    dev = start_dev_server(tmp_path_factory.mktemp("lifecycle"), key, document=document)
    yield dev
    stop_dev_server(dev.process)


def client(server: DevServer, agent: str) -> OAuth2Client:
    creds = server.credentials[agent]
    method = "client_secret_post" if agent == "billing-agent" else "client_secret_basic"
    return OAuth2Client(creds["client_id"], creds["client_secret"], token_endpoint_auth_method=method)


def token_for(server: DevServer) -> str:
    with client(server, "support-bot") as c:
        token = c.fetch_token(
            f"{server.issuer}/token", grant_type="client_credentials", scope="crm.contacts.read"
        )
    return str(token["access_token"])


def introspect(server: DevServer, token: str, agent: str = "billing-agent") -> dict[str, Any]:
    metadata = fetch_json(f"{server.issuer}/.well-known/oauth-authorization-server")
    with client(server, agent) as c:
        response = c.introspect_token(metadata["introspection_endpoint"], token=token)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def cli_json(server: DevServer, *args: str) -> Any:
    result = server.cli(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return json.loads(lines[0]) if len(lines) == 1 else [json.loads(line) for line in lines]


def test_discovery_names_both_endpoints_for_authenticated_agents(server: DevServer) -> None:
    metadata = fetch_json(f"{server.issuer}/.well-known/oauth-authorization-server")
    assert metadata["introspection_endpoint"] == f"{server.issuer}/introspect"
    assert metadata["revocation_endpoint"] == f"{server.issuer}/revoke"
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]


def test_a_resource_server_introspects_and_the_owner_revokes(server: DevServer) -> None:
    # Given support-bot's token, which the CRM's resource server sees as active, with its claims
    token = token_for(server)
    active = introspect(server, token)
    assert active["active"] is True and active["client_id"] == "support-bot"
    assert active["aud"] == "https://crm.example.com"

    # When support-bot revokes it through its OAuth client
    with client(server, "support-bot") as c:
        revoked = c.revoke_token(f"{server.issuer}/revoke", token=token, token_type_hint="access_token")
    assert revoked.status_code == 200, revoked.text

    # Then it is inactive, and nothing more is said about it
    assert introspect(server, token) == {"active": False}


def test_the_kill_switch_through_the_cli(server: DevServer) -> None:
    # Given support-bot's token, active, and the agent listed as enabled
    token = token_for(server)
    assert introspect(server, token)["active"] is True
    rows = {r["client_id"]: r for r in cli_json(server, "agents", "list", "--dev", "--json")}
    assert rows["support-bot"]["status"] == "enabled"
    listed = server.cli("agents", "list", "--dev")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith("AGENT"), listed.stderr

    # When the operator disables it
    disabled = cli_json(server, "agents", "disable", "support-bot", "--dev")
    assert disabled["status"] == "disabled"

    # Then its token is inactive at once, and it gets no new one
    assert introspect(server, token) == {"active": False}
    creds = server.credentials["support-bot"]
    refused = httpx2.post(
        f"{server.issuer}/token",
        auth=(creds["client_id"], creds["client_secret"]),
        data={"grant_type": "client_credentials"},
    )
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    shown = cli_json(server, "agents", "show", "support-bot", "--dev", "--json")
    assert shown["status"] == "disabled" and shown["last_token"] is not None

    # And after enable (a second later), new tokens work and the old one stays revoked
    advance(server, 1)
    assert cli_json(server, "agents", "enable", "support-bot", "--dev")["changed"] is True
    fresh = token_for(server)
    assert introspect(server, fresh)["active"] is True
    assert introspect(server, token) == {"active": False}

    # And both switches are in the audit trail, naming the operator
    records = cli_json(server, "audit", "--dev", "--json", "--agent", "support-bot", "--since", "1h")
    actions = [r for r in records if r["action"] in ("agent.disable", "agent.enable")]
    assert [r["action"] for r in actions] == ["agent.enable", "agent.disable"]
    assert all(r["operator"].endswith("@dev") for r in actions)


def test_an_unknown_agent_is_a_clear_error(server: DevServer) -> None:
    result = server.cli("agents", "disable", "nobody", "--dev")
    assert result.returncode == 1 and "no agent named 'nobody'" in result.stderr
    assert "Traceback" not in result.stderr
