"""Where an operator command goes (the development server or a deployed stack), as ports only.

The operator use cases (operations/*.py) see these narrow interfaces and never an adapter, so they can
be unit-tested with fakes; wiring.operator_target builds the DynamoDB-backed target.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from agent_auth.audit import AuditQuery, AuditRecord
from agent_auth.clock import Clock
from agent_auth.ports import Transaction, Write
from agent_auth.records import AccessRequest, Agent, Consent, JitGrant, PreviousSecret


class OperationFailed(Exception):
    """A refusal the operator can act on; the message says how."""


class PolicyStore(Protocol):
    def get_policy(self) -> dict[str, Any] | None: ...

    def list_client_ids(self) -> list[str]: ...

    def get_client(self, client_id: str) -> Agent | None: ...

    def apply(
        self,
        agents: dict[str, dict[str, Any]],
        *,
        removed: list[str],
        groups: dict[str, dict[str, Any]],
        removed_groups: list[str],
        users: dict[str, dict[str, list[str]]],
        policy: dict[str, Any],
        previous_digest: str | None,
        audit: Write,
    ) -> bool: ...

    def set_secret_hash(
        self,
        client_id: str,
        secret_hash: str,
        rotated_at: str,
        audit: Write,
        *,
        previous: PreviousSecret | None = None,
    ) -> bool: ...


class CredentialsFile(Protocol):
    """The development server's secrets file (`agent-auth dev --credentials-out`), kept current by
    `secret rotate --dev`; a deployed stack has none."""

    def update(self, client_id: str, client_secret: str) -> None: ...


class AuditTrail(Protocol):
    def write(self, record: AuditRecord) -> None: ...

    def entry(self, record: AuditRecord) -> Write: ...

    def pages(self, query: AuditQuery) -> Iterator[list[dict[str, Any]]]:
        """The records, newest first, a page at a time (one indexed read each), `query.limit` at most."""
        ...


class RequestStore(Protocol):
    def get_request(self, request_id: str) -> AccessRequest | None: ...

    def list_requests(self, limit: int = 200) -> list[AccessRequest]: ...

    def decision(self, decided: AccessRequest, now: int) -> Write:
        """Decide a pending, unexpired request; the transaction fails when it no longer is."""
        ...


class GrantStore(Protocol):
    def grants_of(self, client_id: str) -> list[JitGrant]: ...

    def revocation(self, client_id: str, grant_id: str, now: int) -> Write: ...

    def list_grants(self) -> list[JitGrant]:
        """Every grant still stored, whatever its state (operators only; never on a token's path)."""
        ...


class ConsentLedger(Protocol):
    """What operators do with remembered consents: read them and withdraw one (never grant one)."""

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        """The remembered consent; None when there is none or it was revoked."""
        ...

    def list_consents(self, user: str | None = None) -> list[Consent]:
        """One user's or everyone's, revoked ones included."""
        ...

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write: ...


class AgentSwitch(Protocol):
    """The kill switch on agent items (runtime state `apply` never writes)."""

    def disable(self, client_id: str, now: int) -> Write:
        """Refuse the agent everywhere, and revoke every token issued to it up to `now`; fails for an
        unknown agent."""
        ...

    def enable(self, client_id: str) -> Write:
        """Serve the agent again (tokens revoked by a disable stay revoked); fails for an unknown agent."""
        ...


@dataclass(frozen=True)
class Target:
    name: str
    agents: PolicyStore
    audit: AuditTrail
    requests: RequestStore
    grants: GrantStore
    consents: ConsentLedger
    transaction: Transaction
    operator: str
    issuer: str
    clock: Clock
    """The target's clock: the development server's may have been moved with POST /_dev/clock."""
    switch: AgentSwitch | None = None
    """The kill switch (`agent-auth agents disable`); wiring.operator_target always sets it."""
    credentials: CredentialsFile | None = None
