"""In-memory stand-ins for the ports, for unit tests of protocol rules."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agent_auth.adapters.records_codec import agent_from_item
from agent_auth.audit import AuditRecord
from agent_auth.errors import DependencyFailure
from agent_auth.ports import Write
from agent_auth.records import Agent


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
