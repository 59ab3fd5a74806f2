"""In-memory stand-ins for the ports, for unit tests of protocol rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agent_auth.adapters.records_codec import agent_from_item
from agent_auth.audit import AuditRecord
from agent_auth.errors import DependencyFailure
from agent_auth.ports import Write
from agent_auth.records import AccessRequest, Agent, JitGrant


class FakeClients:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = {i["client_id"]: agent_from_item(i) for i in items}
        self.reads: list[str] = []

    def get_client(self, client_id: str) -> Agent | None:
        self.reads.append(client_id)
        return self.items.get(client_id)


class FakeReplay:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        if key in self.seen and self.seen[key] >= now:
            return False
        self.seen[key] = expires_at
        return True


class FakeAudit:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[AuditRecord] = []
        self.fail = fail

    def write(self, record: AuditRecord) -> None:
        if self.fail:
            raise DependencyFailure("audit table unavailable")
        self.records.append(record)

    def entry(self, record: AuditRecord) -> Write:
        """A write that records `record` when a fake transaction runs it (and only then)."""

        def append() -> bool:
            self.write(record)
            return True

        return Write(append)


class LocalSigner:
    """An in-process RS256 signer: the unit-test stand-in for KMS."""

    alg = "RS256"
    kid = "local"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.calls = 0

    def sign(self, signing_input: bytes) -> bytes:
        self.calls += 1
        return self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


class NoKeys:
    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        raise AssertionError("no jwks_uri in these tests")


# Just-in-time stores, in memory (tests/unit/test_jit_rules.py).


class FakeJitWrites:
    """RequestWrites and GrantWrites at once: `put` wraps the record in an opaque Write."""

    def put(self, record: AccessRequest | JitGrant) -> Write:
        return Write(record)


class FakeTransaction:
    """Commits every write at once, or reports a failed condition (`succeed=False`)."""

    def __init__(self, succeed: bool = True) -> None:
        self.succeed = succeed
        self.commits: list[list[Any]] = []

    def commit(self, writes: Sequence[Write]) -> bool:
        self.commits.append([w.operation for w in writes])
        return self.succeed


class FakeRequests:
    """RequestPoller: requests by id, and the time of each request's last poll."""

    def __init__(self, *requests: AccessRequest) -> None:
        self.requests = {r.request_id: r for r in requests}
        self.last_poll: dict[str, int] = {}
        self.reads: list[str] = []

    def get_request(self, request_id: str) -> AccessRequest | None:
        self.reads.append(request_id)
        return self.requests.get(request_id)

    def note_poll(self, request_id: str, now: int, interval: int) -> bool:
        previous = self.last_poll.get(request_id)
        self.last_poll[request_id] = now
        return previous is None or now - previous >= interval


class FakeGrants:
    """GrantStore: grants by (client, id); `consume` is the conditional write, in order with `events`."""

    def __init__(self, *grants: JitGrant, events: list[str] | None = None) -> None:
        self.grants = {(g.client_id, g.grant_id): g for g in grants}
        self.events = events if events is not None else []

    def grants_of(self, client_id: str) -> list[JitGrant]:
        return [g for (client, _), g in self.grants.items() if client == client_id]

    def get_grant(self, client_id: str, grant_id: str) -> JitGrant | None:
        return self.grants.get((client_id, grant_id))

    def consume(self, client_id: str, grant_id: str, now: int) -> bool:
        self.events.append(f"consume {grant_id}")
        grant = self.grants.get((client_id, grant_id))
        if grant is None or not grant.is_usable(now):
            return False
        self.grants[(client_id, grant_id)] = replace(grant, consumed=True)
        return True
