"""`agent-auth audit`: the trail, newest first."""

from __future__ import annotations

from typing import Any

from agent_auth.operations.target import Target


def read_audit(
    target: Target, *, since: float, agent: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    return target.audit.query(since=since, until=target.clock.now(), client_id=agent, limit=limit)
