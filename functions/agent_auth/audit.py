"""Audit records: one per decision, ids and hashes only, never a secret, token or assertion.

Also what reading the trail asks for (AuditQuery): the records since a time, newest first, for one
agent or one user or all of them, at most `limit`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def printable(value: str | None, limit: int = 64) -> str | None:
    """Client-supplied text in a record: bounded, control characters replaced."""
    if value is None:
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def unverified(value: str | None) -> str | None:
    """Input nobody has vouched for, as a fingerprint: a short hash and the length, never the text.

    A client that swaps its id and secret must not write the secret into the audit trail."""
    if value is None:
        return None
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"unverified:{digest}:{len(value)}"


UNVERIFIED = re.compile(r"unverified:[0-9a-f]{12}:[0-9]{1,9}")
"""What `unverified` makes: an operator may look such a fingerprint up with `agent-auth audit --agent`."""


def is_unverified(value: str | None) -> bool:
    return value is not None and UNVERIFIED.fullmatch(value) is not None


def iso_millis(at: float) -> str:
    """A record's time as its sort key spells it: ISO-8601 UTC to the millisecond, so text order is
    time order."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditRecord:
    action: str
    """What was decided: token.issue, policy.apply, secret.rotate, ..."""
    decision: str
    """allow or deny."""
    at: float
    reason: str | None = None
    client_id: str | None = None
    """The agent: proven, or at least existing; unknown names appear only as `unverified` fingerprints."""
    user: str | None = None
    """The person a token acts for (delegated access, exchange)."""
    actor_chain: tuple[str, ...] | None = None
    """The agents acting for the user, most recent first (the token's nested `act`)."""
    token_family: str | None = None
    """The refresh-token family a token belongs to, so a revoked family can be traced."""
    policy_rule: str | None = None
    """Which rule of the policy decided (e.g. `agents.support-bot.jit[0]`)."""
    operator: str | None = None
    approver: str | None = None
    grant_type: str | None = None
    auth_method: str | None = None
    scope_requested: str | None = None
    scope_granted: str | None = None
    audience: str | None = None
    token_id: str | None = None
    http_request_id: str | None = None
    """API Gateway's id of the HTTP request (not an access request, whose id is in `details`)."""
    source_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def timestamp(self) -> str:
        return iso_millis(self.at)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, "", ())}
        if self.actor_chain:
            data["actor_chain"] = list(self.actor_chain)
        data["time"] = self.timestamp
        return data


DEFAULT_LIMIT = 100
"""Records `agent-auth audit` prints unless told otherwise: the newest screenful or two, not a day."""


@dataclass(frozen=True)
class AuditQuery:
    """Which records to read: newer than `since`, newest first, at most `limit`.

    `now` is the reader's clock, so the newest records are found without a scan; `agent` and `user`
    narrow the trail to one agent (its name, or an `unverified` fingerprint) or one user (an email)."""

    since: float
    now: float
    agent: str | None = None
    user: str | None = None
    limit: int = DEFAULT_LIMIT
