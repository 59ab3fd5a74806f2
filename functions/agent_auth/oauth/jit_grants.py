"""Elevated access granted by an approval: which grants a token may draw on, and their limits.

A grant is read with its end compared to the clock on every use (DynamoDB TTL only cleans up), and a
single-use grant is consumed by one conditional write, so two tokens can never both draw on it.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent_auth.errors import InvalidGrant


class GrantStore(Protocol):
    def grants_of(self, client_id: str) -> list[dict[str, Any]]:
        """Every grant recorded for the client, ended or not (one query); `usable_grants` decides."""
        ...

    def get_grant(self, client_id: str, grant_id: str) -> dict[str, Any] | None: ...

    def consume(self, client_id: str, grant_id: str, now: int) -> bool:
        """Mark a single-use grant used; False if it already was (or has ended)."""
        ...


def is_usable(grant: dict[str, Any], now: int) -> bool:
    return (
        not grant.get("revoked")
        and not grant.get("consumed")
        and int(grant["starts_at"]) <= now < int(grant["ends_at"])
    )


def still_allowed(agent: dict[str, Any], grant: dict[str, Any]) -> bool:
    """A grant serves only while the policy that allowed it still does: its scopes are still requestable
    by one of the agent's just-in-time rules, none is in `never`, and its audience is still reachable.
    An operator who removes a rule or adds a scope to `never` ends such grants on the next request."""
    requestable = {s for rule in agent.get("jit") or () for s in rule["scopes"]}
    requestable -= set(agent.get("never") or ())
    return set(grant["scopes"]) <= requestable and grant["audience"] in (agent.get("audiences") or {})


def usable_grants(store: GrantStore, agent: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """The agent's grants a token may draw on now: not ended, revoked or consumed, and still allowed."""
    return [g for g in store.grants_of(agent["client_id"]) if is_usable(g, now) and still_allowed(agent, g)]


def consume_single_use(store: GrantStore, grants: list[dict[str, Any]], now: int) -> None:
    for grant in grants:
        if grant.get("single_use") and not store.consume(grant["client_id"], grant["grant_id"], now):
            raise InvalidGrant("The grant was already used", reason="single_use_grant_consumed")
