"""`agent-auth agents`: what each agent is and holds, and the kill switch (`disable` / `enable`).

Disabling an agent is one transaction with its audit record: the flag on the agent item (every endpoint
agents call refuses it from the next request, and every token issued to it up to now stays revoked, even
after `enable`: product.md, "Token lifecycle"), its pending access requests denied, and its JIT grants
revoked, so nothing approved before the disable comes back after an enable. A decision racing the disable
fails one of the transaction's conditions; the sweep is then read again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent_auth.audit import AuditQuery, AuditRecord
from agent_auth.operations.target import AgentSwitch, OperationFailed, Target
from agent_auth.ports import Write
from agent_auth.records import AccessRequest, Agent, JitGrant, to_plain
from agent_auth.timefmt import iso_seconds

MAX_WRITES = 100
"""DynamoDB's limit on the writes of one transaction."""
ATTEMPTS = 3
LAST_TOKEN_WINDOW = 30 * 86400
"""How far back `agents show` looks in the audit trail for the agent's last token."""
DISABLE_REASON = "agent disabled"
MAX_REQUESTS = 100_000


def _switch(target: Target) -> AgentSwitch:
    if target.switch is None:
        raise OperationFailed(f"{target.name} has no kill switch configured")
    return target.switch


def _agent(target: Target, client_id: str) -> Agent:
    agent = target.agents.get_client(client_id) if len(client_id) <= 64 else None
    if agent is None:
        raise OperationFailed(
            f"no agent named {client_id!r} in {target.name}; `agent-auth agents list` names them"
        )
    return agent


def _status(agent: Agent, now: int) -> str:
    if agent.disabled:
        return "disabled"
    if agent.auth_locked_until is not None and now < agent.auth_locked_until:
        return "locked"
    return "enabled"


def list_agents(target: Target) -> list[dict[str, Any]]:
    """Every agent of the applied policy: how it authenticates, its roles and rules, and its state."""
    now = int(target.clock.now())
    rows = []
    for client_id in target.agents.list_client_ids():
        agent = target.agents.get_client(client_id)
        if agent is None:
            continue  # removed between the two reads
        rows.append(
            {
                "client_id": agent.client_id,
                "owner": agent.owner,
                "auth_method": agent.auth_method,
                "roles": list(agent.roles),
                "jit_rules": len(agent.jit),
                "delegation": agent.delegation is not None,
                "status": _status(agent, now),
            }
        )
    return rows


def show_agent(target: Target, client_id: str) -> dict[str, Any]:
    """One agent in full: its compiled access, its active JIT grants and the last token it was issued."""
    agent = _agent(target, client_id)
    now = int(target.clock.now())
    grants = [g for g in target.grants.grants_of(agent.client_id) if g.is_usable(now)]
    return {
        "client_id": agent.client_id,
        "owner": agent.owner,
        "auth_method": agent.auth_method,
        "status": _status(agent, now),
        "roles": list(agent.roles),
        "scopes": dict(agent.scopes),
        "audiences": dict(agent.audiences),
        "jit": [to_plain(rule) for rule in agent.jit],
        "never": sorted(agent.never),
        "delegation": to_plain(agent.delegation) if agent.delegation else None,
        "serves": dict(agent.serves),
        "secret_rotated_at": agent.secret_rotated_at,
        "tokens_revoked_before": (
            iso_seconds(agent.tokens_revoked_before) if agent.tokens_revoked_before is not None else None
        ),
        "active_grants": [_grant_row(g) for g in grants],
        "last_token": _last_token(target, agent.client_id, now),
    }


def _grant_row(grant: JitGrant) -> dict[str, Any]:
    return {
        "grant_id": grant.grant_id,
        "scopes": list(grant.scopes),
        "audience": grant.audience_uri,
        "approved_by": grant.approved_by,
        "ends_at": iso_seconds(grant.ends_at),
        "single_use": grant.single_use,
    }


def _last_token(target: Target, client_id: str, now: int) -> dict[str, Any] | None:
    query = AuditQuery(since=now - LAST_TOKEN_WINDOW, now=now, agent=client_id, limit=1000)
    for page in target.audit.pages(query):
        for record in page:
            if record.get("action") == "token.issue" and record.get("decision") == "allow":
                return {
                    "time": record.get("time"),
                    "token_id": record.get("token_id"),
                    "grant_type": record.get("grant_type"),
                    "scope": record.get("scope_granted"),
                    "audience": record.get("audience"),
                }
    return None


def disable_agent(target: Target, client_id: str) -> dict[str, Any]:
    """The kill switch. Idempotent: disabling again moves the cut-off to now and sweeps again."""
    switch = _switch(target)
    agent = _agent(target, client_id)
    for _ in range(ATTEMPTS):
        now = int(target.clock.now())
        requests, grants = _sweep(target, agent.client_id, now)
        record = AuditRecord(
            action="agent.disable",
            decision="allow",
            at=target.clock.now(),  # to the millisecond: the trail keeps disable and enable in order
            client_id=agent.client_id,
            operator=target.operator,
            reason=DISABLE_REASON,
            details={
                "requests_cancelled": [r.request_id for r in requests],
                "grants_revoked": [g.grant_id for g in grants],
                "was_disabled": agent.disabled,
            },
        )
        writes = [
            switch.disable(agent.client_id, now),
            *(target.requests.decision(_cancelled(r, target.operator, now), now) for r in requests),
            *(target.grants.revocation(g.client_id, g.grant_id, now) for g in grants),
            target.audit.entry(record),
        ]
        if _commit(target, writes):
            _sweep_late(target, agent.client_id, now)
            return {
                "client_id": agent.client_id,
                "status": "disabled",
                "disabled_at": iso_seconds(now),
                "requests_cancelled": [r.request_id for r in requests],
                "grants_revoked": [g.grant_id for g in grants],
            }
        agent = _agent(target, client_id)  # removed, or a decision raced the sweep: read again
    raise OperationFailed(
        f"{client_id} could not be disabled: its access requests kept changing; run the command again"
    )


def enable_agent(target: Target, client_id: str) -> dict[str, Any]:
    """Serve the agent again. Tokens, refresh tokens and grants ended by the disable stay ended."""
    switch = _switch(target)
    agent = _agent(target, client_id)
    now = int(target.clock.now())
    if not agent.disabled:
        return {"client_id": agent.client_id, "status": "enabled", "changed": False}
    record = AuditRecord(
        action="agent.enable",
        decision="allow",
        at=target.clock.now(),
        client_id=agent.client_id,
        operator=target.operator,
    )
    if not target.transaction.commit([switch.enable(agent.client_id), target.audit.entry(record)]):
        raise OperationFailed(f"no agent named {client_id!r} in {target.name} any more")
    enabled = {"client_id": agent.client_id, "status": "enabled", "changed": True}
    return {**enabled, "enabled_at": iso_seconds(now)}


def _sweep(target: Target, client_id: str, now: int) -> tuple[list[AccessRequest], list[JitGrant]]:
    """The agent's pending requests, and its JIT grants that have not ended (a single-use one that was
    consumed has nothing left to revoke)."""
    requests = [
        r
        for r in target.requests.list_requests(MAX_REQUESTS)
        if r.client_id == client_id and r.is_pending(now)
    ]
    grants = [
        g for g in target.grants.grants_of(client_id) if not g.revoked and not g.consumed and now < g.ends_at
    ]
    return requests, grants


def _sweep_late(target: Target, client_id: str, now: int) -> None:
    """A request whose authentication was read just before the disable may be written just after the
    sweep: look once more, now that the agent can start nothing new, and end what turns up."""
    requests, grants = _sweep(target, client_id, now)
    writes = [
        *(target.requests.decision(_cancelled(r, target.operator, now), now) for r in requests),
        *(target.grants.revocation(g.client_id, g.grant_id, now) for g in grants),
    ]
    for start in range(0, len(writes), MAX_WRITES - 1):
        record = AuditRecord(
            action="agent.disable",
            decision="allow",
            at=target.clock.now(),  # to the millisecond: the trail keeps disable and enable in order
            client_id=client_id,
            operator=target.operator,
            reason=DISABLE_REASON,
            details={
                "requests_cancelled": [r.request_id for r in requests],
                "grants_revoked": [g.grant_id for g in grants],
                "late_sweep": True,
            },
        )
        target.transaction.commit([*writes[start : start + MAX_WRITES - 1], target.audit.entry(record)])


def _cancelled(request: AccessRequest, operator: str, now: int) -> AccessRequest:
    """A pending request of a disabled agent is denied by the operator: its poll answers access_denied,
    and an approver who opens the email's link sees who decided."""
    return replace(request.decided("denied", operator, now), deny_reason=DISABLE_REASON)


def _commit(target: Target, writes: list[Write]) -> bool:
    """One transaction when it fits. Beyond DynamoDB's limit, the switch and the audit record go first
    (from then on the agent can ask for nothing new), then the rest in chunks."""
    if len(writes) <= MAX_WRITES:
        return target.transaction.commit(writes)
    head, middle, audit = writes[0], writes[1:-1], writes[-1]
    if not target.transaction.commit([head, audit]):
        return False
    for start in range(0, len(middle), MAX_WRITES):
        target.transaction.commit(middle[start : start + MAX_WRITES])  # a raced decision: next sweep
    return True
