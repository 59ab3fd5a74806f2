"""JIT grants: which ones a token may draw on, and their limits.

A grant is read with its end compared to the clock on every use (DynamoDB TTL only cleans up), and a
single-use grant is consumed by one conditional write, so two tokens can never both draw on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from agent_auth.errors import InvalidGrant
from agent_auth.records import Agent, JitGrant


class GrantStore(Protocol):
    def grants_of(self, client_id: str) -> list[JitGrant]:
        """Every grant recorded for the client, ended or not (one query); `usable_grants` decides."""
        ...

    def get_grant(self, client_id: str, grant_id: str) -> JitGrant | None: ...

    def consume(self, client_id: str, grant_id: str, now: int) -> bool:
        """Mark a single-use grant used; False if it already was (or has ended)."""
        ...


def still_allowed(agent: Agent, scopes: Iterable[str], audience: str) -> bool:
    """A grant serves only while the policy that allowed it still does: its scopes are still requestable
    by one of the agent's just-in-time rules, none is in `never`, and its audience is still reachable.
    An operator who removes a rule or adds a scope to `never` ends such grants on the next request."""
    return set(scopes) <= agent.requestable and audience in agent.audiences


def usable_grants(store: GrantStore, agent: Agent, now: int) -> list[JitGrant]:
    """The agent's grants a token may draw on now: not ended, revoked or consumed, and still allowed."""
    return [
        g
        for g in store.grants_of(agent.client_id)
        if g.is_usable(now) and still_allowed(agent, g.scopes, g.audience)
    ]


def consume_single_use(store: GrantStore, grants: Iterable[JitGrant], now: int) -> None:
    for grant in grants:
        if grant.single_use and not store.consume(grant.client_id, grant.grant_id, now):
            raise InvalidGrant("The grant was already used", reason="single_use_grant_consumed")


class JitGrants:
    """The token path's view of JIT grants (oauth.grant_types.client_credentials.Elevations)."""

    def __init__(self, store: GrantStore) -> None:
        self._store = store

    def usable(self, agent: Agent, now: int) -> list[JitGrant]:
        return usable_grants(self._store, agent, now)

    def consume_single_use(self, grants: Iterable[JitGrant], now: int) -> None:
        consume_single_use(self._store, grants, now)
