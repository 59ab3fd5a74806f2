"""Brute force at client authentication, with in-memory ports: counters per agent and per source, the
lock, the 429, and an unknown client making the same calls as a known one (oauth/throttle.py)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import replace

import pytest

from agent_auth.clock import FixedClock
from agent_auth.errors import InvalidClient, TooManyFailures
from agent_auth.oauth import client_secrets
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.grant_types.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.grant_types.registry import GrantTypeRegistry
from agent_auth.oauth.throttle import FailureCounts, FailureThrottle, ThrottleLimits
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request
from tests.support import JWT_BEARER, rsa_key
from tests.unit.fakes import FakeAudit, FakeClients, FakeReplay, LocalSigner, NoKeys

ISSUER = "https://auth.example.com"
SECRET = client_secrets.generate_secret()
START = 1_800_000_000 + 17  # 17 s into a five-minute window: 283 s to its end
KEY = rsa_key()
AGENT = {
    "client_id": "bot",
    "auth_method": "client_secret_post",
    "secret_hash": client_secrets.hash_secret(SECRET),
    "scopes": {"crm.read": "crm"},
    "audiences": {"crm": "https://crm.example.com"},
}
SIGNER = {
    "client_id": "signer",
    "auth_method": "private_key_jwt",
    "jwks": json.dumps({"keys": [KEY.jwk]}),
    "scopes": {"crm.read": "crm"},
    "audiences": {"crm": "https://crm.example.com"},
}
LIMITS = ThrottleLimits(agent_failures=10, source_failures=10, window=300)


class FakeCounters:
    """The FailureCounters port in memory; a lock is written onto the agent, as on its item."""

    def __init__(self, clients: FakeClients) -> None:
        self.clients = clients
        self.counts: Counter[str] = Counter()
        self.calls: list[tuple[str, str]] = []
        self.decoy_locked_until: int | None = None

    def count_source_failure(self, source: str, window_end: int) -> int:
        key = f"source#{source}#{window_end}"
        self.counts[key] += 1
        self.calls.append(("count", "source"))
        return self.counts[key]

    def count_failure(self, *, source: str, client_id: str | None, window_end: int) -> FailureCounts:
        counted = self.count_source_failure(source, window_end)
        key = f"agent#{client_id}#{window_end}" if client_id else "decoy#client"
        self.counts[key] += 1
        self.calls.append(("count", "agent" if client_id else "decoy"))
        return FailureCounts(counted, self.counts[key])

    def lock(self, client_id: str | None, until: int) -> None:
        self.calls.append(("lock", "agent" if client_id else "decoy"))
        if client_id is None:
            self.decoy_locked_until = until
        else:
            self.clients.items[client_id] = replace(self.clients.items[client_id], auth_locked_until=until)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(START)
        self.clients = FakeClients(AGENT, SIGNER)
        self.counters = FakeCounters(self.clients)
        self.audit = FakeAudit()
        self.replay = FakeReplay()
        verifier = AssertionVerifier(audiences=(ISSUER,), replay=self.replay, keys=NoKeys(), clock=self.clock)
        throttle = FailureThrottle(self.counters, self.clock, LIMITS)
        self.endpoint = ClientEndpoint(
            authenticator=ClientAuthenticator(self.clients, verifier, throttle),
            operation=TokenOperation(
                GrantTypeRegistry(
                    ClientCredentialsGrant(TokenIssuer(issuer=ISSUER, signer=LocalSigner(), lifetime=300))
                )
            ),
            audit=self.audit,
            clock=self.clock,
        )

    def attempt(self, client_id: str, secret: str, source: str = "198.51.100.1") -> int:
        """One token request; its status (the error's, when refused)."""
        try:
            return self.endpoint.handle(_request(client_id, secret, source)).status
        except InvalidClient as error:
            return error.status


@pytest.fixture
def world() -> World:
    return World()


def test_failures_below_the_limit_are_401_and_counted_per_agent_and_source(world: World) -> None:
    # Given nine wrong secrets for the bot
    statuses = [world.attempt("bot", "wrong") for _ in range(9)]
    # Then each is a plain 401, counted for the agent and for the address it came from
    assert statuses == [401] * 9
    window_end = 1_800_000_300
    assert world.counters.counts == {f"agent#bot#{window_end}": 9, f"source#198.51.100.1#{window_end}": 9}
    assert [r.reason for r in world.audit.records] == ["wrong_secret"] * 9


def test_at_the_limit_every_attempt_is_429_right_secret_too(world: World) -> None:
    # Given ten wrong secrets for the bot, each from another address (the per-source limit never trips)
    assert [world.attempt("bot", "wrong", source=f"203.0.113.{i}") for i in range(10)] == [401] * 10
    assert world.clients.items["bot"].auth_locked_until == 1_800_000_300

    # When the right secret and a wrong one come next, from a fresh address
    for secret in (SECRET, "wrong"):
        with pytest.raises(TooManyFailures) as refused:
            world.endpoint.handle(_request("bot", secret, "192.0.2.99"))
        # Then both are 429 temporarily_unavailable until the window ends, with a fixed description
        error = refused.value
        assert (error.status, error.error) == (429, "temporarily_unavailable")
        assert error.headers() == {"Retry-After": "283"}
        assert error.description == TooManyFailures.DESCRIPTION
    # And each is audited once, naming the agent and which counter refused it
    last = world.audit.records[-2:]
    assert [(r.decision, r.client_id, r.reason) for r in last] == [
        ("deny", "bot", "too_many_failures:agent"),
        ("deny", "bot", "too_many_failures:agent"),
    ]
    assert SECRET not in repr(world.audit.records)


def test_after_the_window_the_right_secret_works(world: World) -> None:
    # Given the bot locked by ten failures
    for _ in range(10):
        world.attempt("bot", "wrong")
    assert world.attempt("bot", SECRET) == 429
    # When the window has passed
    world.clock.advance(283)
    # Then the right secret gets a token again, and a wrong one is a plain 401
    assert world.attempt("bot", SECRET) == 200
    assert world.attempt("bot", "wrong") == 401


def test_unknown_client_counts_only_its_source_and_the_decoy(world: World) -> None:
    # Given failures for a client that does not exist
    for _ in range(3):
        assert world.attempt("ghost", "guess") == 401
    # Then only the source address and the fixed decoy were counted: the unknown name keys nothing
    assert set(world.counters.counts) == {"source#198.51.100.1#1800000300", "decoy#client"}
    assert not [key for key in world.counters.counts if "ghost" in key]
    assert world.counters.calls == [("count", "source"), ("count", "decoy")] * 3


def test_known_and_unknown_clients_make_the_same_calls_at_every_step(world: World) -> None:
    # Given twelve wrong secrets for the bot from one address, and twelve for a name that does not
    # exist from another (what one attacker comparing a name with a made-up one would see)
    def run(client_id: str, source: str) -> tuple[list[int], list[str]]:
        world.counters.calls.clear()
        statuses, calls = [], []
        for _ in range(12):
            statuses.append(world.attempt(client_id, "wrong", source=source))
            calls.append(" ".join(f"{kind}:{_anonymous(who)}" for kind, who in world.counters.calls))
            world.counters.calls.clear()
        return statuses, calls

    known, unknown = run("bot", "198.51.100.7"), run("ghost", "198.51.100.8")
    # Then both get ten 401s and then 429s, with the same port calls at every attempt (the lock of the
    # agent at the tenth failure is matched by the decoy's)
    assert known == unknown
    assert known[0] == [401] * 10 + [429] * 2
    assert known[1][9] == "count:source count:name lock:name"
    assert world.counters.decoy_locked_until == 1_800_000_300


def test_success_reads_the_agent_once_and_counts_nothing(world: World) -> None:
    # Given earlier failures for the bot (below the limit)
    world.attempt("bot", "wrong")
    world.clients.reads.clear()
    world.counters.calls.clear()
    # When the right secret comes
    assert world.attempt("bot", SECRET) == 200
    # Then the agent was read once and no counter was read or written
    assert world.clients.reads == ["bot"]
    assert world.counters.calls == []


def test_source_past_its_limit_turns_failures_into_429(world: World) -> None:
    # Given one address spraying guesses over names that do not exist
    statuses = [world.attempt(f"guess-{i}", "x") for i in range(12)]
    # Then its eleventh failure and later ones are 429, audited with the source as the reason
    assert statuses == [401] * 10 + [429] * 2
    assert world.audit.records[-1].reason == "too_many_failures:source"
    # And another address is not affected; nor does the source limit lock a real agent out
    assert world.attempt("ghost", "x", source="192.0.2.1") == 401
    assert world.attempt("bot", SECRET) == 200


def test_locked_agent_assertion_is_not_verified_and_its_jti_is_not_burned(world: World) -> None:
    # Given the signing agent locked
    world.clients.items["signer"] = replace(world.clients.items["signer"], auth_locked_until=START + 60)
    assertion = KEY.assertion("signer", ISSUER, iat=START, exp=START + 300)
    body = f"grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
    request = replace(_request("signer", "-", "198.51.100.1"), body=body.encode())
    # When it presents a valid assertion / Then it is refused without the assertion being recorded
    with pytest.raises(TooManyFailures) as refused:
        world.endpoint.handle(request)
    assert refused.value.headers() == {"Retry-After": "60"}
    assert world.replay.seen == {}
    # And once the lock has passed, that very assertion still works
    world.clock.advance(61)
    assert world.endpoint.handle(request).status == 200


def test_429_carries_no_basic_challenge(world: World) -> None:
    # Given the bot locked, When it authenticates with the Authorization header
    world.clients.items["bot"] = replace(
        world.clients.items["bot"], auth_method="client_secret_basic", auth_locked_until=START + 5
    )
    header = "Basic " + base64.b64encode(f"bot:{SECRET}".encode()).decode()
    request = _request("bot", SECRET, "198.51.100.1")
    request = replace(
        request, headers={**request.headers, "authorization": header}, body=b"grant_type=client_credentials"
    )
    with pytest.raises(TooManyFailures) as refused:
        world.endpoint.handle(request)
    # Then it is told when to retry, not to present credentials again
    assert refused.value.headers() == {"Retry-After": "5"}


def test_source_failure_is_a_seam_for_other_endpoints(world: World) -> None:
    # Given the throttle as another endpoint would use it (approval links with a bad signature)
    throttle = FailureThrottle(world.counters, world.clock, LIMITS)
    # Then it counts against the address alone and says how long to wait once past the limit
    assert [throttle.source_failure("203.0.113.5") for _ in range(10)] == [None] * 10
    assert throttle.source_failure("203.0.113.5") == 283
    assert world.counters.calls == [("count", "source")] * 11


def _request(client_id: str, secret: str, source: str) -> Request:
    return Request(
        method="POST",
        path="/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}".encode(),
        source_ip=source,
        http_request_id="req",
    )


def _anonymous(counter: str) -> str:
    """An agent's counter and the decoy are the same step, seen from outside."""
    return "name" if counter in ("agent", "decoy") else counter
