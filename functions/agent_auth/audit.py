"""Audit records: one per decision, ids and hashes only, never a secret, token or assertion."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def printable(value: str | None, limit: int = 64) -> str | None:
    """Client-supplied text in a record: bounded, control characters replaced."""
    if value is None:
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


@dataclass(frozen=True)
class AuditRecord:
    action: str
    """What was decided: token.issue, policy.apply, secret.rotate, ..."""
    decision: str
    """allow or deny."""
    at: float
    reason: str | None = None
    client_id: str | None = None
    operator: str | None = None
    approver: str | None = None
    grant_type: str | None = None
    auth_method: str | None = None
    scope_requested: str | None = None
    scope_granted: str | None = None
    audience: str | None = None
    token_id: str | None = None
    request_id: str | None = None
    source_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, "")}
        data["time"] = self.timestamp
        return data
