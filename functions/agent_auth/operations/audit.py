"""`agent-auth audit`: the trail, newest first, a page at a time, for everyone, one agent or one user."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agent_auth.audit import DEFAULT_LIMIT, AuditQuery, is_unverified
from agent_auth.names import EMAIL_PATTERN, NAME_PATTERN
from agent_auth.operations.target import OperationFailed, Target

MAX_LIMIT = 100_000


def read_audit(
    target: Target,
    *,
    within: float,
    agent: str | None = None,
    user: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[list[dict[str, Any]]]:
    """The records of the last `within` seconds by the target's clock (the development server's may
    have been moved), as pages; checked first, so a typo is an error rather than an empty trail."""
    if not 1 <= limit <= MAX_LIMIT:
        raise OperationFailed(f"--limit takes 1 to {MAX_LIMIT:,}")
    if agent is not None and not (re.fullmatch(NAME_PATTERN, agent) or is_unverified(agent)):
        raise OperationFailed("--agent takes an agent's name, or an unverified:... fingerprint")
    if user is not None and not re.fullmatch(EMAIL_PATTERN, user):
        raise OperationFailed("--user takes an email address")
    now = target.clock.now()
    query = AuditQuery(since=now - within, now=now, agent=agent, user=user, limit=limit)
    return target.audit.pages(query)
