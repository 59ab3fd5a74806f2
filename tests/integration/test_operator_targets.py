"""The CLI against a deployed stack (found from CloudFormation outputs) and agents with jwks_uri."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent_auth import schema
from agent_auth.adapters.aws import AwsClients
from agent_auth.cli.main import main
from agent_auth.handlers import token
from tests.conftest import ISSUER, Deployment
from tests.support import JWT_BEARER, ClientKey, form, policy_document, post_event, rsa_key, write_policy


def create_stack(aws: AwsClients, deployment: Deployment, name: str = "agent-auth") -> None:
    """A stack in moto whose outputs name the tables, as the CDK stack's outputs do."""
    s = deployment.settings
    env = s.to_env()
    outputs = {spec.output_key: env[spec.env_var] for spec in schema.ALL_TABLES}
    outputs |= {schema.ISSUER_OUTPUT: ISSUER, schema.SIGNING_KEY_OUTPUT: s.signing_key_arn}
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    aws.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_apply_and_audit_against_a_stack(
    aws: AwsClients, deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(aws, deployment)
    document = policy_document(deployment.keys)
    document["agents"]["support-bot"]["roles"] = ["crm-editor"]
    changed = write_policy(tmp_path / "changed.yaml", document)

    assert main(["apply", str(changed), "--stack", "agent-auth", "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "Plan for stack agent-auth" in out and "~ agent support-bot (roles)" in out
    assert deployment.target.agents.get_client("support-bot").scopes == {  # type: ignore[union-attr]
        "crm.contacts.read": "crm",
        "crm.contacts.write": "crm",
    }

    assert main(["audit", "--stack", "agent-auth", "--region", "us-east-1", "--json", "--since", "1h"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    apply = next(r for r in records if r["action"] == "policy.apply" and r["details"].get("agents_changed"))
    assert apply["operator"].startswith("arn:aws:sts::") or apply["operator"].startswith("arn:aws:iam::")


def test_unknown_stack_is_a_clear_error(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--stack", "nope", "--region", "us-east-1"]) == 1
    assert "cannot read stack 'nope'" in capsys.readouterr().err


def test_secret_rotate_against_a_stack_prints_json_once(
    aws: AwsClients, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    create_stack(aws, deployment)
    assert main(["secret", "rotate", "billing-agent", "--stack", "agent-auth", "--region", "us-east-1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"client_id", "client_secret"} and len(printed["client_secret"]) >= 43
    stored = deployment.target.agents.get_client("billing-agent")
    assert printed["client_secret"] not in json.dumps(stored, default=str)


class _Jwks:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, _Jwks]]:
    state = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", state
    server.shutdown()


def test_jwks_uri_keys_are_fetched_cached_and_refreshed_for_a_new_kid(
    deployment: Deployment, tmp_path: Path, jwks_server: tuple[str, _Jwks]
) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy

    uri, published = jwks_server
    first, second = rsa_key(kid="k1"), rsa_key(kid="k2")
    published.keys = [first.jwk]
    document = policy_document(deployment.keys)
    document["agents"]["uri-agent"] = {
        "owner": "o@example.com",
        "auth": "private_key_jwt",
        "jwks_uri": uri,
        "roles": ["crm-reader"],
    }
    apply_policy(deployment.target, load_policy(str(write_policy(tmp_path / "p.yaml", document))))

    def request_with(key: ClientKey) -> int:
        assertion = key.assertion("uri-agent", f"{ISSUER}/token")
        event = post_event(
            form(
                grant_type="client_credentials", client_assertion_type=JWT_BEARER, client_assertion=assertion
            )
        )
        return int(token.lambda_handler(event, None)["statusCode"])

    assert request_with(first) == 200
    assert request_with(first) == 200
    assert published.fetches == 1, "the key set is cached"
    published.keys = [first.jwk, second.jwk]  # the agent rotates: a kid we have not seen
    from agent_auth.adapters import jwks_fetcher

    jwks_fetcher.MIN_REFRESH_SECONDS = 0
    try:
        assert request_with(second) == 200
    finally:
        jwks_fetcher.MIN_REFRESH_SECONDS = 30
    assert published.fetches == 2
