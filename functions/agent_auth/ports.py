"""The narrow interfaces the use cases need (fosite's storage-per-flow idea, as typing.Protocol).

Adapters in agent_auth.adapters implement them against AWS; tests implement them in memory.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent_auth.audit import AuditRecord


class Signer(Protocol):
    """Signs a JWS signing input. The key never leaves the signer (KMS on AWS)."""

    alg: str
    kid: str

    def sign(self, signing_input: bytes) -> bytes: ...


class ClientReader(Protocol):
    def get_client(self, client_id: str) -> dict[str, Any] | None:
        """The compiled agent item, or None for an unknown client. One DynamoDB read."""
        ...


class ReplayGuard(Protocol):
    def remember_once(self, key: str, expires_at: int, now: int) -> bool:
        """Record `key` until `expires_at`; False when it is already recorded and unexpired."""
        ...


class AuditLog(Protocol):
    def write(self, record: AuditRecord) -> None:
        """Persist one record before the response; raises DependencyFailure when it cannot."""
        ...


class KeyFetcher(Protocol):
    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        """A client's published JWKS (for agents registered with jwks_uri), cached by the adapter."""
        ...
