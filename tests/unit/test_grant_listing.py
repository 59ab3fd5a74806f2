"""What `grants list --all` calls each stored grant, judged by the target's clock on every read."""

from __future__ import annotations

from dataclasses import replace

from agent_auth.jit.approval import denied_tombstone
from agent_auth.operations.requests import grant_status
from agent_auth.records import JitGrant

GRANT = JitGrant(
    grant_id="req_1",
    client_id="support-bot",
    scopes=("crm.contacts.write",),
    audience="crm",
    audience_uri="https://crm.example.com",
    starts_at=100,
    ends_at=200,
    request_id="req_1",
    approved_by="lead@example.com",
)


def test_each_state_of_a_grant() -> None:
    assert grant_status(GRANT, 150) == "active"
    assert grant_status(GRANT, 50) == "scheduled"
    assert grant_status(GRANT, 200) == "ended"  # ends_at is exclusive, as JitGrant.is_usable has it
    assert grant_status(replace(GRANT, consumed=True), 150) == "used"
    assert grant_status(replace(GRANT, revoked=True), 150) == "revoked"


def test_what_a_denial_leaves_is_not_called_a_revoked_grant() -> None:
    assert grant_status(denied_tombstone(GRANT, 150), 150) == "denied"
