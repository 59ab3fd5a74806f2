"""`agent-auth consents` and `agent-auth consents revoke`: what users allowed agents to do for them.

A consent is remembered per user and agent (unless the agent's `delegation.consent` is `every_time`)
and stands behind every refresh of the tokens it led to: the refresh-token grant (RFC 6749 §6) asks
for it on each use. Withdrawing it is therefore what ends those refresh tokens; the user is asked
again at the next /authorize. Access tokens already issued run to their `exp`.
"""

from __future__ import annotations

from typing import Any

from agent_auth.audit import AuditRecord
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.records import Consent
from agent_auth.timefmt import iso_seconds

MAX_NAME = 320
"""An email address is at most 320 characters (RFC 5321 §4.5.3.1); longer input names nothing."""


def _row(consent: Consent) -> dict[str, Any]:
    return {
        "user": consent.user,
        "client_id": consent.client_id,
        "audience": consent.audience,
        "scopes": list(consent.scopes),
        "granted_at": iso_seconds(consent.granted_at),
        "status": "revoked" if consent.revoked else "active",
    }


def list_consents(target: Target, user: str | None = None) -> list[dict[str, Any]]:
    """Remembered consents, by user then agent, revoked ones included (marked so)."""
    return [_row(c) for c in target.consents.list_consents(user)]


def revoke_consent(target: Target, user: str, client_id: str) -> dict[str, Any]:
    """Withdraw what `user` allowed `client_id`, with its audit record in the same transaction: the
    refresh tokens it covered stop working at their next use."""
    now = int(target.clock.now())
    known = len(user) <= MAX_NAME and len(client_id) <= MAX_NAME
    consent = target.consents.get_consent(user, client_id) if known else None
    missing = (
        f"{user!r} has no active consent for {client_id!r} in {target.name}; "
        f"`agent-auth consents --user {user}` lists them"
    )
    if consent is None:
        raise OperationFailed(missing)
    record = AuditRecord(
        action="consent.revoke",
        decision="allow",
        at=now,
        client_id=consent.client_id,
        user=consent.user,
        operator=target.operator,
        audience=consent.audience,
        details={"scopes": " ".join(consent.scopes)},
    )
    withdrawal = target.consents.revoke_consent(consent.user, consent.client_id, now)
    writes = [withdrawal, target.audit.entry(record)]
    if not target.transaction.commit(writes):
        raise OperationFailed(missing)
    return {"user": consent.user, "client_id": consent.client_id, "revoked_at": iso_seconds(now)}
