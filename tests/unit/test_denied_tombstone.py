"""A denial leaves a revoked tombstone under the request's id in the grants table, so the table itself
refuses a live grant for a denied request (its Put is conditional), and no token ever draws on one."""

from __future__ import annotations

from agent_auth.jit.approval import denied_tombstone
from agent_auth.jit.grants import usable_grants
from agent_auth.jit.requests import grant_for
from agent_auth.records import Agent, JitRule
from tests.unit.test_approval_service import NOW, World, pending


class Store:
    def __init__(self, *grants: object) -> None:
        self.grants = list(grants)

    def grants_of(self, client_id: str) -> list[object]:
        return self.grants


def test_the_tombstone_is_the_requests_grant_already_ended_and_revoked() -> None:
    request = pending().decided("denied", "oncall@example.com", NOW)
    tombstone = denied_tombstone(grant_for(request, NOW), NOW)
    assert tombstone.grant_id == request.request_id and tombstone.revoked and tombstone.ends_at == NOW
    agent = Agent(
        "support-bot",
        "owner@example.com",
        "client_secret_basic",
        audiences={"crm": "https://crm.example.com"},
        jit=(JitRule(("crm.contacts.write",), "crm", "support-leads", False, 3600, False),),
    )
    assert usable_grants(Store(tombstone), agent, NOW - 1) == []  # type: ignore[arg-type]


def test_a_denial_commits_the_tombstone_with_the_decision() -> None:
    world = World()
    world.decide(world.link(), "deny")
    [tombstone] = world.transaction.grants
    assert tombstone.revoked and tombstone.grant_id == world.stored().request_id
