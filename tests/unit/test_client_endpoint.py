"""The client-endpoint shell lets each operation declare its client authentication (fosite's
CanSkipClientAuth): required, or a public agent (auth: none) naming itself with client_id."""

from __future__ import annotations

import pytest

from agent_auth.clock import FixedClock
from agent_auth.errors import InvalidClient
from agent_auth.oauth import client_secrets
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import AuthenticatedClient, ClientAuthenticator
from agent_auth.oauth.operation import ClientAuthentication, Outcome
from agent_auth.oauth.params import Form
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request
from tests.unit.fakes import FakeAudit, FakeClients, FakeReplay, NoKeys

SECRET = client_secrets.generate_secret()
PUBLIC = {"client_id": "cli-app", "owner": "o@example.com", "auth_method": "none"}
CONFIDENTIAL = {
    "client_id": "bot",
    "owner": "o@example.com",
    "auth_method": "client_secret_post",
    "secret_hash": client_secrets.hash_secret(SECRET),
}


class Operation:
    action = "test.perform"

    def __init__(self, authentication: ClientAuthentication) -> None:
        self.authentication = authentication
        self.performed: list[AuthenticatedClient] = []

    def validate(self, form: Form) -> None:
        return None

    def client_authentication(self, form: Form) -> ClientAuthentication:
        return self.authentication

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        self.performed.append(client)
        return Outcome(response={"ok": True})


def endpoint(operation: Operation, audit: FakeAudit) -> ClientEndpoint:
    clock = FixedClock(1_800_000_000)
    verifier = AssertionVerifier(audiences=("https://as",), replay=FakeReplay(), keys=NoKeys(), clock=clock)
    return ClientEndpoint(
        operation=operation,
        authenticator=ClientAuthenticator(FakeClients(PUBLIC, CONFIDENTIAL), verifier),
        audit=audit,
        clock=clock,
    )


def post(body: str) -> Request:
    return Request(
        method="POST",
        path="/x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=body.encode(),
        source_ip="198.51.100.7",
        http_request_id="r-1",
    )


def test_a_public_agent_names_itself_where_the_operation_allows_it() -> None:
    operation, audit = Operation(ClientAuthentication.PUBLIC_ALLOWED), FakeAudit()
    endpoint(operation, audit).handle(post("client_id=cli-app"))
    [client] = operation.performed
    assert client.client_id == "cli-app" and client.method == "none" and client.agent.is_public
    [record] = audit.records
    assert record.decision == "allow" and record.client_id == "cli-app" and record.auth_method == "none"


def test_confidential_agents_still_authenticate_where_public_ones_are_allowed() -> None:
    operation, audit = Operation(ClientAuthentication.PUBLIC_ALLOWED), FakeAudit()
    endpoint(operation, audit).handle(post(f"client_id=bot&client_secret={SECRET}"))
    assert operation.performed[0].method == "client_secret_post"
    with pytest.raises(InvalidClient):
        endpoint(operation, audit).handle(post("client_id=bot"))  # naming a confidential agent proves nothing
    assert audit.records[-1].reason == "method_not_registered" and audit.records[-1].client_id == "bot"


@pytest.mark.parametrize("body", ["client_id=cli-app", "client_id=ghost", ""])
def test_where_authentication_is_required_naming_oneself_is_refused(body: str) -> None:
    operation, audit = Operation(ClientAuthentication.REQUIRED), FakeAudit()
    with pytest.raises(InvalidClient):
        endpoint(operation, audit).handle(post(body))
    assert operation.performed == []
    [record] = audit.records
    assert record.decision == "deny" and record.reason == "no_client_authentication"


def test_an_unknown_public_client_is_refused_and_fingerprinted() -> None:
    operation, audit = Operation(ClientAuthentication.PUBLIC_ALLOWED), FakeAudit()
    with pytest.raises(InvalidClient):
        endpoint(operation, audit).handle(post("client_id=ghost"))
    [record] = audit.records
    assert record.reason == "unknown_client" and str(record.client_id).startswith("unverified:")
    assert "ghost" not in repr(record)
