"""`agent-auth requests`, `agent-auth grants list` and `agent-auth grants revoke`: access requests and
the JIT grants their approvals made."""

from __future__ import annotations

from typing import Any

from agent_auth.audit import AuditRecord
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.records import JitGrant, to_plain
from agent_auth.timefmt import iso_seconds


def list_requests(target: Target, limit: int = 200) -> list[dict[str, Any]]:
    """Access requests, newest first, with their status as of the target's now: a pending one past its
    end is expired, and an approved one whose grant an operator ended is revoked (the request item
    keeps `approved`: the decision stands, the grant it made does not)."""
    now = int(target.clock.now())
    revoked = {g.request_id for g in target.grants.list_grants() if g.revoked}
    rows = []
    for request in target.requests.list_requests(limit):
        row = to_plain(request)
        if request.status == "pending" and now >= request.expires_at:
            row["status"] = "expired"
        elif request.status == "approved" and request.request_id in revoked:
            row["status"] = "revoked"
        rows.append(row)
    return rows


def grant_status(grant: JitGrant, now: int) -> str:
    """What a grant is worth now; expiry is judged here, as on every read (the TTL only cleans up)."""
    if grant.revoked:
        # A denial leaves a revoked grant with no approver under the request's id (jit/approval.py
        # denied_tombstone); a grant an operator ended keeps who approved it.
        return "revoked" if grant.approved_by else "denied"
    if grant.consumed:
        return "used"
    if now >= grant.ends_at:
        return "ended"
    return "active" if grant.starts_at <= now else "scheduled"


def list_grants(target: Target, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    """The JIT grants tokens can draw on now (all those still stored with `include_inactive`), the
    soonest to end first, each with who approved it."""
    now = int(target.clock.now())
    rows = []
    for grant in sorted(target.grants.list_grants(), key=lambda g: (g.ends_at, g.grant_id)):
        status = grant_status(grant, now)
        if status != "active" and not include_inactive:
            continue
        rows.append(
            {
                "grant_id": grant.grant_id,
                "client_id": grant.client_id,
                "scopes": list(grant.scopes),
                "audience": grant.audience_uri,
                "starts_at": iso_seconds(grant.starts_at),
                "ends_at": iso_seconds(grant.ends_at),
                "approved_by": grant.approved_by,
                "single_use": grant.single_use,
                "status": status,
            }
        )
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
