"""AgentAuth against an authorization server on a mock transport: discovery, client authentication,
the token cache, just-in-time waiting, token exchange and introspection on the wire."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from typing import Any

import httpx2
import jwt
import pytest

from agent_auth.clock import FixedClock
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.records import Agent
from agent_auth_sdk import (
    TOKEN_EXCHANGE,
    AccessDenied,
    AgentAuth,
    AgentAuthError,
    OAuthError,
    RequestExpired,
)
from agent_auth_sdk.discovery import metadata_url
from tests.sdk.fakes import ISSUER, FakeServer, form_of, oauth_error, token_response
from tests.support import rsa_key
from tests.unit.fakes import FakeReplay, NoKeys


class Clock:
    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def agent_for(server: FakeServer, clock: Clock | None = None, **kwargs: Any) -> AgentAuth:
    credentials = kwargs or {"client_secret": "s3cret"}
    clock = clock or Clock()
    return AgentAuth(
        ISSUER, "support-bot", http=server.client(), clock=clock, sleep=clock.sleep, **credentials
    )


def test_metadata_is_found_at_the_rfc_8414_location() -> None:
    assert (
        metadata_url("https://as.example.com")
        == "https://as.example.com/.well-known/oauth-authorization-server"
    )
    assert (
        metadata_url("https://as.example.com/tenant/")
        == "https://as.example.com/.well-known/oauth-authorization-server/tenant"
    )


def test_metadata_naming_another_issuer_is_refused() -> None:
    # Given metadata whose issuer is not the one configured (RFC 8414 §3.3: a mix-up)
    server = FakeServer(routes={"/token": lambda r: token_response()})
    server.metadata = lambda: {"issuer": "https://evil.example.com", "token_endpoint": "https://evil/token"}  # type: ignore[method-assign]
    # When a token is asked for / Then nothing is sent to the endpoints it names
    with pytest.raises(AgentAuthError, match="issuer"):
        agent_for(server).token("crm.contacts.read")
    assert server.counts["POST /token"] == 0


def test_client_secret_basic_form_encodes_id_and_secret() -> None:
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined with ':' and base64-encoded
    server = FakeServer(routes={"/token": lambda r: token_response()})
    agent_for(server, client_secret="a:b c+d").token("crm.contacts.read", "https://crm.example.com")
    [sent] = [r for r in server.sent if r.url.path == "/token"]
    decoded = base64.b64decode(sent.headers["authorization"].removeprefix("Basic ")).decode()
    assert decoded == "support-bot:a%3Ab+c%2Bd"
    assert form_of(sent) == {
        "grant_type": "client_credentials",
        "scope": "crm.contacts.read",
        "resource": "https://crm.example.com",
    }


def test_client_secret_post_sends_the_credentials_in_the_body() -> None:
    server = FakeServer(routes={"/token": lambda r: token_response()})
    agent_for(server, client_secret="s3cret", auth_method="client_secret_post").token()
    [sent] = [r for r in server.sent if r.url.path == "/token"]
    assert "authorization" not in sent.headers
    assert form_of(sent) == {
        "grant_type": "client_credentials",
        "client_id": "support-bot",
        "client_secret": "s3cret",
    }


def test_private_key_jwt_assertions_pass_the_servers_own_verifier() -> None:
    # Given the agent's key registered with the server, and the server's assertion verifier
    key = rsa_key("agent-key")
    server = FakeServer(routes={"/token": lambda r: token_response()})
    clock = Clock(time.time())
    agent = agent_for(server, clock, private_key=key.private, kid="agent-key")
    replay = FakeReplay()
    verifier = AssertionVerifier(
        audiences=(ISSUER,), replay=replay, keys=NoKeys(), clock=FixedClock(int(clock.now))
    )
    record = Agent(
        client_id="support-bot",
        owner="o@example.com",
        auth_method="private_key_jwt",
        jwks=json.dumps({"keys": [key.jwk]}),
    )
    # When the agent gets two tokens (fresh assertions each time)
    agent.token("a")
    agent.token("b")
    assertions = [form_of(r) for r in server.sent if r.url.path == "/token"]
    # Then each assertion is accepted once, with its own jti, aud = the issuer, and a short life
    for sent in assertions:
        assert sent["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        verifier.verify(sent["client_assertion"], record)
        claims = jwt.decode(sent["client_assertion"], options={"verify_signature": False})
        assert claims["aud"] == ISSUER and claims["exp"] - claims["iat"] <= 60
        assert jwt.get_unverified_header(sent["client_assertion"])["kid"] == "agent-key"
    assert (
        len(
            {
                jwt.decode(a["client_assertion"], options={"verify_signature": False})["jti"]
                for a in assertions
            }
        )
        == 2
    )


def test_exactly_one_credential_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        AgentAuth(ISSUER, "x")
    with pytest.raises(ValueError, match="exactly one"):
        AgentAuth(ISSUER, "x", client_secret="s", private_key=rsa_key().private)


def test_one_token_request_for_many_concurrent_callers() -> None:
    # Given a slow token endpoint
    def slow(request: httpx2.Request) -> httpx2.Response:
        time.sleep(0.2)
        return token_response("shared")

    server = FakeServer(routes={"/token": slow})
    agent = AgentAuth(ISSUER, "support-bot", client_secret="s", http=server.client())
    # When 32 threads ask at once
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(agent.token("crm.contacts.read").access_token))
        for _ in range(32)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then the server saw one token request and every caller got its token
    assert server.counts["POST /token"] == 1 and results == ["shared"] * 32
    # And another scope or resource is another token
    agent.token("crm.contacts.write")
    assert server.counts["POST /token"] == 2


def test_a_token_is_renewed_after_75_percent_of_its_life() -> None:
    issued = iter(["first", "second"])
    server = FakeServer(routes={"/token": lambda r: token_response(next(issued), expires_in=100)})
    clock = Clock()
    agent = agent_for(server, clock)
    assert agent.token().access_token == "first"
    clock.now += 74
    assert agent.token().access_token == "first" and server.counts["POST /token"] == 1
    clock.now += 2  # 76% of its life
    assert agent.token().access_token == "second" and server.counts["POST /token"] == 2


def test_while_one_caller_renews_the_others_keep_the_still_valid_token() -> None:
    started, release = threading.Event(), threading.Event()
    issued = iter(["first", "second"])

    def token(request: httpx2.Request) -> httpx2.Response:
        value = next(issued)
        if value == "second":
            started.set()
            release.wait(5)
        return token_response(value, expires_in=100)

    server = FakeServer(routes={"/token": token})
    clock = Clock()
    agent = agent_for(server, clock)
    agent.token()
    clock.now += 80
    renewing = threading.Thread(target=agent.token)
    renewing.start()
    assert started.wait(5)
    # Then a caller during the renewal is not blocked: it gets the old, still valid token
    assert agent.token().access_token == "first"
    release.set()
    renewing.join()
    assert agent.token().access_token == "second" and server.counts["POST /token"] == 2


def test_async_callers_share_one_request() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        time.sleep(0.2)
        return token_response("shared")

    server = FakeServer(routes={"/token": slow})
    agent = AgentAuth(ISSUER, "support-bot", client_secret="s", http=server.client())

    async def many() -> list[str]:
        tokens = await asyncio.gather(*(agent.atoken("crm.contacts.read") for _ in range(20)))
        return [t.access_token for t in tokens]

    assert asyncio.run(many()) == ["shared"] * 20
    assert server.counts["POST /token"] == 1


def test_errors_carry_the_oauth_error_and_description() -> None:
    server = FakeServer(routes={"/token": lambda r: oauth_error("invalid_scope", "The scope is not allowed")})
    with pytest.raises(OAuthError) as caught:
        agent_for(server).token("billing.invoices.read")
    assert caught.value.error == "invalid_scope"
    assert caught.value.error_description == "The scope is not allowed" and caught.value.status == 400
    assert "invalid_scope: The scope is not allowed" in str(caught.value)


def test_a_token_never_shows_in_its_repr() -> None:
    server = FakeServer(routes={"/token": lambda r: token_response("very-secret-token")})
    assert "very-secret-token" not in repr(agent_for(server).token())


def test_request_access_waits_with_the_interval_and_backs_off_on_slow_down() -> None:
    # Given a pending request, then pending, slow_down, pending, and the elevated token
    answers = iter(
        [
            oauth_error("authorization_pending"),
            oauth_error("slow_down"),
            oauth_error("authorization_pending"),
            token_response("elevated", scope="crm.contacts.write"),
        ]
    )
    server = FakeServer(
        routes={
            "/access-requests": lambda r: httpx2.Response(
                202, json={"request_id": "req_1", "status": "pending", "expires_in": 3600, "interval": 5}
            ),
            "/token": lambda r: next(answers),
        }
    )
    clock = Clock()
    agent = agent_for(server, clock)
    request = agent.request_access("crm.contacts.write", "Merge duplicates", duration=600)
    [asked] = [form_of(r) for r in server.sent if r.url.path == "/access-requests"]
    assert asked == {"scope": "crm.contacts.write", "reason": "Merge duplicates", "duration": "600"}
    # When the agent waits
    token = request.wait(progress=False)
    # Then it polled every interval, 5 seconds more after slow_down, and got the token
    assert token.access_token == "elevated" and token.scopes == ("crm.contacts.write",)
    assert clock.slept == [5, 5, 10, 10] and request.status == "approved"
    polls = [form_of(r) for r in server.sent if r.url.path == "/token"]
    assert polls == [{"grant_type": "urn:agent-auth:grant-type:access-request", "request_id": "req_1"}] * 4


def test_an_auto_approved_request_is_redeemed_at_once() -> None:
    server = FakeServer(
        routes={
            "/access-requests": lambda r: httpx2.Response(
                200, json={"request_id": "req_2", "status": "approved", "interval": 5}
            ),
            "/token": lambda r: token_response("elevated"),
        }
    )
    clock = Clock()
    assert (
        agent_for(server, clock)
        .request_access("crm.contacts.write", "Import")
        .wait(progress=False)
        .access_token
        == "elevated"
    )
    assert clock.slept == []


@pytest.mark.parametrize(
    ("error", "kind"), [("access_denied", AccessDenied), ("expired_token", RequestExpired)]
)
def test_a_denied_or_expired_request_ends_the_wait(error: str, kind: type[OAuthError]) -> None:
    server = FakeServer(
        routes={
            "/access-requests": lambda r: httpx2.Response(
                202, json={"request_id": "req_3", "status": "pending", "interval": 5}
            ),
            "/token": lambda r: oauth_error(error, "The access request was denied"),
        }
    )
    with pytest.raises(kind) as caught:
        agent_for(server).request_access("crm.contacts.write", "Why").wait(progress=False)
    assert caught.value.error == error


def test_a_refused_request_raises_at_once() -> None:
    server = FakeServer(routes={"/access-requests": lambda r: oauth_error("access_denied", "No rule", 403)})
    with pytest.raises(AccessDenied) as caught:
        agent_for(server).request_access("billing.invoices.read", "Why")
    assert caught.value.status == 403


def test_wait_gives_up_at_its_timeout() -> None:
    server = FakeServer(
        routes={
            "/access-requests": lambda r: httpx2.Response(
                202, json={"request_id": "req_4", "status": "pending", "interval": 5}
            ),
            "/token": lambda r: oauth_error("authorization_pending"),
        }
    )
    clock = Clock()
    with pytest.raises(RequestExpired):
        agent_for(server, clock).request_access("crm.contacts.write", "Why").wait(timeout=12, progress=False)
    assert clock.slept == [5, 5]


class Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_shown_only_on_a_terminal(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([oauth_error("authorization_pending"), token_response("elevated")])
    server = FakeServer(
        routes={
            "/access-requests": lambda r: httpx2.Response(
                202, json={"request_id": "req_5", "status": "pending", "interval": 5}
            ),
            "/token": lambda r: next(answers),
        }
    )
    stderr = Terminal(tty)
    monkeypatch.setattr("sys.stderr", stderr)
    agent_for(server).request_access("crm.contacts.write", "Why").wait()
    if tty:
        assert "waiting for approval of crm.contacts.write (req_5)" in stderr.getvalue()
        assert stderr.getvalue().endswith("req_5: approved\n")
    else:
        assert stderr.getvalue() == ""


def test_token_exchange_speaks_rfc_8693() -> None:
    # Given a token endpoint answering as RFC 8693 §2.2.1 says
    server = FakeServer(
        routes={
            "/token": lambda r: httpx2.Response(
                200,
                json={
                    "access_token": "narrower",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 120,
                    "scope": "crm.contacts.read",
                },
            )
        }
    )
    # When the agent exchanges a user's token for another audience
    token = agent_for(server).exchange(
        "users-token", resource="https://billing.example.com", scope="crm.contacts.read"
    )
    # Then the request has the RFC's fields and the client authentication, and the answer is parsed
    [sent] = [r for r in server.sent if r.url.path == "/token"]
    assert sent.headers["authorization"].startswith("Basic ")
    assert form_of(sent) == {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": "users-token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "resource": "https://billing.example.com",
        "scope": "crm.contacts.read",
    }
    assert token.access_token == "narrower" and token.issued_token_type.endswith(":access_token")  # type: ignore[union-attr]


def test_token_exchange_with_an_actor_token_and_a_missing_issued_token_type() -> None:
    server = FakeServer(routes={"/token": lambda r: token_response()})
    agent = agent_for(server)
    with pytest.raises(ValueError, match="actor_token"):
        agent.exchange("t", actor_token="a")
    with pytest.raises(AgentAuthError, match="issued_token_type"):
        agent.exchange("t", actor_token="a", actor_token_type="urn:ietf:params:oauth:token-type:jwt")
    [sent] = [form_of(r) for r in server.sent if r.url.path == "/token"]
    assert sent["actor_token"] == "a" and sent["actor_token_type"] == "urn:ietf:params:oauth:token-type:jwt"


def test_an_exchange_refusal_is_an_oauth_error() -> None:
    server = FakeServer(routes={"/token": lambda r: oauth_error("invalid_target", "Not allowed")})
    with pytest.raises(OAuthError) as caught:
        agent_for(server).exchange("t", resource="https://other.example.com")
    assert caught.value.error == "invalid_target"


def test_introspection_speaks_rfc_7662() -> None:
    server = FakeServer(routes={"/introspect": lambda r: httpx2.Response(200, json={"active": False})})
    assert agent_for(server).introspect("some-token") == {"active": False}
    [sent] = [r for r in server.sent if r.url.path == "/introspect"]
    assert form_of(sent) == {"token": "some-token", "token_type_hint": "access_token"}
    assert sent.headers["authorization"].startswith("Basic ")
    server.routes["/introspect"] = lambda r: httpx2.Response(200, json={"active": "yes"})
    with pytest.raises(AgentAuthError, match="active"):
        agent_for(server).introspect("some-token")


def test_revocation_speaks_rfc_7009_and_drops_the_cached_token() -> None:
    # Given an agent holding a cached token
    issued = iter(["token-1", "token-2"])
    server = FakeServer(
        routes={
            "/token": lambda r: token_response(next(issued)),
            "/revoke": lambda r: httpx2.Response(200),
        }
    )
    agent = agent_for(server)
    assert agent.token().access_token == "token-1"
    # When it revokes that token
    agent.revoke("token-1")
    # Then the request is RFC 7009 §2.1's, authenticated, and the next token() asks for a new one
    [sent] = [r for r in server.sent if r.url.path == "/revoke"]
    assert form_of(sent) == {"token": "token-1", "token_type_hint": "access_token"}
    assert sent.headers["authorization"].startswith("Basic ")
    assert agent.token().access_token == "token-2"
    # And a refresh token is revoked with its hint
    agent.revoke("refresh-1", token_type_hint="refresh_token")
    assert form_of(server.sent[-1])["token_type_hint"] == "refresh_token"


def test_a_revocation_refusal_is_an_oauth_error() -> None:
    server = FakeServer(routes={"/revoke": lambda r: oauth_error("invalid_client", status=401)})
    with pytest.raises(OAuthError) as caught:
        agent_for(server).revoke("token-1")
    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)


def test_a_response_without_a_bearer_token_is_refused() -> None:
    server = FakeServer(
        routes={"/token": lambda r: httpx2.Response(200, json={"access_token": "x", "token_type": "mac"})}
    )
    with pytest.raises(AgentAuthError, match="Bearer"):
        agent_for(server).token()


def test_a_token_without_expires_in_is_not_reused() -> None:
    server = FakeServer(
        routes={"/token": lambda r: httpx2.Response(200, json={"access_token": "x", "token_type": "Bearer"})}
    )
    agent = agent_for(server)
    agent.token()
    agent.token()
    assert server.counts["POST /token"] == 2


def test_an_async_client_is_refused_as_the_agents_transport() -> None:
    with pytest.raises(TypeError, match="synchronous"):
        AgentAuth(ISSUER, "support-bot", client_secret="s", http=httpx2.AsyncClient())


def test_callers_waiting_on_a_failed_request_share_its_failure() -> None:
    # Given a token endpoint that is slow and then fails
    def failing(request: httpx2.Request) -> httpx2.Response:
        time.sleep(0.2)
        return oauth_error("temporarily_unavailable", "Service temporarily unavailable", 503)

    server = FakeServer(routes={"/token": failing})
    agent = AgentAuth(ISSUER, "support-bot", client_secret="s", http=server.client())
    errors: list[str] = []

    def call() -> None:
        try:
            agent.token("crm.contacts.read")
        except OAuthError as exc:
            errors.append(exc.error)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then the outage cost one request, not sixteen, and every caller saw the OAuth error
    assert server.counts["POST /token"] == 1 and errors == ["temporarily_unavailable"] * 16
    # And the next call tries again
    with pytest.raises(OAuthError):
        agent.token("crm.contacts.read")
    assert server.counts["POST /token"] == 2
