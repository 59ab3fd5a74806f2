"""`agent-auth consents` and `consents revoke` as use cases on fakes: what is listed, what one
revocation writes (the withdrawal and its audit record, in one transaction), and the refusals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import pytest

from agent_auth.audit import AuditRecord
from agent_auth.clock import FixedClock
from agent_auth.operations import OperationFailed, Target, list_consents, revoke_consent
from agent_auth.ports import Write
from agent_auth.records import Consent
from tests.unit.fakes import FakeAudit

NOW = 1_750_000_000
ALICE = Consent("alice@example.com", "public-app", "crm", ("crm.contacts.read",), NOW - 3600)
BOB = Consent("bob@example.com", "support-bot", "crm", ("crm.contacts.read", "crm.contacts.write"), NOW - 60)


class FakeConsents:
    """ConsentLedger: one consent per lower-cased user and agent, as ConsentTable keys them."""

    def __init__(self, *consents: Consent) -> None:
        self.items = {(c.user.lower(), c.client_id): c for c in consents}

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        consent = self.items.get((user.lower(), client_id))
        return consent if consent is not None and not consent.revoked else None

    def list_consents(self, user: str | None = None) -> list[Consent]:
        found = [c for (u, _), c in self.items.items() if user is None or u == user.lower()]
        return sorted(found, key=lambda c: (c.user, c.client_id))

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write:
        return Write(("revoke", user.lower(), client_id, now))


class Transaction:
    """Runs every write, or none when `succeed` is False (a failed condition, a conflict)."""

    def __init__(self, consents: FakeConsents) -> None:
        self.consents = consents
        self.succeed = True
        self.commits: list[list[Any]] = []

    def commit(self, writes: Sequence[Write]) -> bool:
        self.commits.append([w.operation for w in writes])
        if not self.succeed:
            return False
        for write in writes:
            if isinstance(write.operation, tuple):
                _, user, client_id, _ = write.operation
                key = (user, client_id)
                self.consents.items[key] = replace(self.consents.items[key], revoked=True)
            else:
                write.operation()
        return True


class World:
    def __init__(self, *consents: Consent) -> None:
        self.consents = FakeConsents(*consents)
        self.audit = FakeAudit()
        self.transaction = Transaction(self.consents)
        self.target = Target(
            name="the test target",
            agents=cast(Any, None),
            audit=cast(Any, self.audit),
            requests=cast(Any, None),
            grants=cast(Any, None),
            consents=self.consents,
            transaction=self.transaction,
            operator="ops@example.com",
            issuer="https://issuer.example",
            clock=FixedClock(NOW),
        )


def test_consents_are_listed_with_their_status_one_user_or_everyone() -> None:
    # Given alice's consent and bob's, which was revoked
    world = World(ALICE, replace(BOB, revoked=True))

    # When the operator lists them, all and then alice's only
    everyone = list_consents(world.target)
    alices = list_consents(world.target, "Alice@Example.com")

    # Then each row says who allowed which agent what, and whether it still stands
    assert [(r["user"], r["client_id"], r["status"]) for r in everyone] == [
        ("alice@example.com", "public-app", "active"),
        ("bob@example.com", "support-bot", "revoked"),
    ]
    assert alices == [
        {
            "user": "alice@example.com",
            "client_id": "public-app",
            "audience": "crm",
            "scopes": ["crm.contacts.read"],
            "granted_at": "2025-06-15T14:06:40Z",
            "status": "active",
        }
    ]


def test_a_revocation_commits_the_withdrawal_and_its_audit_record_together() -> None:
    world = World(ALICE, BOB)

    # When the operator withdraws alice's consent for public-app (her address typed in capitals)
    result = revoke_consent(world.target, "ALICE@example.com", "public-app")

    # Then one transaction held both the withdrawal and the audit record
    [commit] = world.transaction.commits
    assert commit[0] == ("revoke", "alice@example.com", "public-app", NOW) and callable(commit[1])
    assert len(commit) == 2
    revoked_at = "2025-06-15T15:06:40Z"
    assert result == {"user": "alice@example.com", "client_id": "public-app", "revoked_at": revoked_at}

    # And the record names the operator, the user and the agent; only alice's consent ended
    [record] = world.audit.records
    assert (record.action, record.decision, record.operator) == ("consent.revoke", "allow", "ops@example.com")
    assert (record.user, record.client_id, record.at) == ("alice@example.com", "public-app", NOW)
    assert record.details == {"scopes": "crm.contacts.read"}
    assert world.consents.get_consent("alice@example.com", "public-app") is None
    assert world.consents.get_consent("bob@example.com", "support-bot") == BOB


@pytest.mark.parametrize(
    ("user", "agent"),
    [
        ("carol@example.com", "public-app"),  # no such consent
        ("alice@example.com", "support-bot"),  # alice never allowed this agent
        ("alice@example.com", "x" * 5000),  # too long to name anything: nothing is read
    ],
)
def test_an_unknown_consent_is_a_clear_refusal_that_changes_nothing(user: str, agent: str) -> None:
    world = World(ALICE)
    with pytest.raises(OperationFailed, match=r"has no active consent for .*`agent-auth consents --user"):
        revoke_consent(world.target, user, agent)
    assert world.transaction.commits == [] and world.audit.records == []


def test_a_consent_already_revoked_cannot_be_revoked_again() -> None:
    world = World(replace(ALICE, revoked=True))
    with pytest.raises(OperationFailed, match="no active consent"):
        revoke_consent(world.target, "alice@example.com", "public-app")
    assert world.transaction.commits == [] and world.audit.records == []


def test_a_transaction_that_fails_reports_it_and_writes_no_record() -> None:
    # Given the consent vanished between the read and the write (the condition fails)
    world = World(ALICE)
    world.transaction.succeed = False
    with pytest.raises(OperationFailed, match="no active consent"):
        revoke_consent(world.target, "alice@example.com", "public-app")
    assert world.audit.records == []
    assert world.consents.get_consent("alice@example.com", "public-app") == ALICE


def test_the_record_is_the_only_one_and_carries_no_unexpected_fields() -> None:
    world = World(ALICE)
    revoke_consent(world.target, "alice@example.com", "public-app")
    [record] = world.audit.records
    assert isinstance(record, AuditRecord)
    assert set(record.to_dict()) == {
        "action",
        "decision",
        "at",
        "client_id",
        "user",
        "operator",
        "audience",
        "details",
        "id",
        "time",
    }
