"""`agent-auth requests` and `agent-auth grants revoke`: access requests and the JIT grants they made."""

from __future__ import annotations

from typing import Any

from agent_auth.audit import AuditRecord
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.records import to_plain
from agent_auth.timefmt import iso_seconds


def list_requests(target: Target, limit: int = 200) -> list[dict[str, Any]]:
    """Access requests, newest first, with their status as of the target's now (a pending one past its
    end is expired)."""
    now = int(target.clock.now())
    rows = []
    for request in target.requests.list_requests(limit):
        row = to_plain(request)
        if request.status == "pending" and now >= request.expires_at:
            row["status"] = "expired"
        rows.append(row)
    return rows


def revoke_grant(target: Target, grant_id: str) -> dict[str, Any]:
    """End the JIT grant of a request at once, whatever the request's status says: no new token draws
    on it. (Tokens already issued run to their exp, at most the token lifetime; refusing them at
    introspection comes with the token lifecycle.)"""
    now = int(target.clock.now())
    request = target.requests.get_request(grant_id) if len(grant_id) <= 64 else None
    if request is None:
        raise OperationFailed(f"no grant {grant_id!r} in {target.name}; `agent-auth requests` lists them")
    record = AuditRecord(
        action="grant.revoke",
        decision="allow",
        at=now,
        client_id=request.client_id,
        operator=target.operator,
        details={"grant": grant_id, "request_status": request.status},
    )
    writes = [target.grants.revocation(request.client_id, grant_id, now), target.audit.entry(record)]
    if not target.transaction.commit(writes):
        raise OperationFailed(f"no grant {grant_id!r} in {target.name}; the request made none")
    return {"grant_id": grant_id, "client_id": request.client_id, "revoked_at": iso_seconds(now)}
