"""The cross-cutting ports: signing, the audit log, transactions, and the agent and key reads every
client endpoint needs. Narrower ports live beside the flow that uses them (fosite's storage per flow).

Adapters in agent_auth.adapters implement them against AWS; tests implement them in memory
(tests/unit/fakes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_auth.audit import AuditRecord
from agent_auth.records import Agent


class Signer(Protocol):
    """Signs a JWS signing input. The key never leaves the signer (KMS on AWS). `alg` and `kid` are
    read-only: with rotation they name the key of the moment (adapters/kms.RotatingKmsSigner)."""

    @property
    def alg(self) -> str: ...

    @property
    def kid(self) -> str: ...

    def sign(self, signing_input: bytes) -> bytes: ...


class ClientReader(Protocol):
    def get_client(self, client_id: str) -> Agent | None:
        """The compiled agent, or None for an unknown client. One DynamoDB read."""
        ...


class ReplayGuard(Protocol):
    def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        """Record `key` until `expires_at`; False when it is already recorded and unexpired."""
        ...


@dataclass(frozen=True)
class Write:
    """One write of a transaction, built by an adapter and opaque to everyone else."""

    operation: Any


class Transaction(Protocol):
    def commit(self, writes: Sequence[Write]) -> bool:
        """Apply every write or none. False when a condition failed (someone else got there first, or the
        item expired): the caller re-reads and reports what it meets. Other failures: DependencyFailure."""
        ...


class AuditLog(Protocol):
    def write(self, record: AuditRecord) -> None:
        """Persist one record before the response; raises DependencyFailure when it cannot."""
        ...

    def entry(self, record: AuditRecord) -> Write:
        """The record as one write of a transaction, for a change audited atomically with itself."""
        ...


class KeyFetcher(Protocol):
    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        """A client's published JWKS (for agents registered with jwks_uri), cached by the adapter."""
        ...
