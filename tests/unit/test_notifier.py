"""The notifier function's batch handling, with in-memory mail, MAC, groups and audit.

Each stream record is one access request; a record that fails is reported for retry by its
SequenceNumber and logged (exception type and request id only), and the others are still mailed.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import logging
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from agent_auth.clock import FixedClock
from agent_auth.handlers import notifier as notifier_function
from agent_auth.jit.notifier import Notifier
from tests.support import load_event
from tests.unit.fakes import FakeAudit

REASON = "Customer asked to merge duplicate contacts (ticket 4821)"


class FakeMailer:
    """Accepts every message but those to `refused`, failing with text that holds the link."""

    def __init__(self, refused: frozenset[str] = frozenset()) -> None:
        self.sent: list[EmailMessage] = []
        self.refused = refused

    def send(self, message: EmailMessage) -> None:
        if message["To"] in self.refused:
            raise RuntimeError(f"refused {message['To']}: {message.as_string()}")
        self.sent.append(message)

    @property
    def recipients(self) -> list[str]:
        return sorted(str(m["To"]) for m in self.sent)


class FakeMac:
    def generate_mac(self, message: bytes) -> bytes:
        return hmac.new(b"test-key", message, hashlib.sha256).digest()


class FakeGroups:
    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups

    def group_members(self, group: str) -> list[str]:
        return self.groups.get(group, [])


GROUPS = {
    "support-leads": ["lead@example.com", "owner@example.com"],
    "night-shift": ["bounce@example.com"],
}


def stream_record(number: int, *, approvers: str = "support-leads", event: str = "INSERT") -> dict[str, Any]:
    """The recorded INSERT, as request `req_<number>` with sequence number `<number>`."""
    record: dict[str, Any] = copy.deepcopy(load_event("requests_stream_insert.json")["Records"][0])
    record["eventName"] = event
    image = record["dynamodb"]["NewImage"]
    image["pk"] = image["request_id"] = {"S": f"req_{number}"}
    image["approvers"] = {"S": approvers}
    record["dynamodb"]["SequenceNumber"] = str(number)
    return record


@pytest.fixture
def mailer(monkeypatch: pytest.MonkeyPatch) -> FakeMailer:
    """The function's notifier, built from fakes; the mailer refuses the night shift's address."""
    mailer = FakeMailer(refused=frozenset({"bounce@example.com"}))
    built = Notifier(
        issuer="https://auth.example.com",
        sender="agent-auth@example.com",
        agents=FakeGroups(GROUPS),
        mac=FakeMac(),
        mailer=mailer,
        audit=FakeAudit(),
        clock=FixedClock(1_795_989_700),
    )
    monkeypatch.setattr(notifier_function, "notifier", lambda: built)
    return mailer


@pytest.fixture
def logged() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the function's Powertools logger writes, one JSON object a line."""
    handler = notifier_function.logger.logger_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


def test_one_failing_record_among_good_ones_is_the_only_one_reported_and_it_is_logged(
    mailer: FakeMailer, logged: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given three new requests, the second for an approver whose address the mail service refuses
    event = {"Records": [stream_record(1), stream_record(2, approvers="night-shift"), stream_record(3)]}
    # When the batch reaches the notifier
    result = notifier_function.lambda_handler(event, None)
    # Then only the second is reported for retry, by its sequence number
    assert result == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    # And the other two were mailed to their approvers (never the owner)
    assert mailer.recipients == ["lead@example.com", "lead@example.com"]
    # And the failure is logged once: its type and the request id, nothing of the event or the error text
    [line] = logged()
    assert line["level"] == "WARNING" and line["message"] == "approval notification failed"
    assert line["failure"] == "RuntimeError" and line["access_request"] == "req_2"
    text = json.dumps(line)
    assert "/approvals/" not in text and "bounce@example.com" not in text and REASON not in text


def test_a_record_that_cannot_be_read_is_reported_and_logged_and_the_rest_mailed(
    mailer: FakeMailer, logged: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a batch whose first record lost an attribute every request has
    broken = stream_record(1)
    del broken["dynamodb"]["NewImage"]["client_id"]
    event = {"Records": [broken, stream_record(2)]}
    # When the batch reaches the notifier
    result = notifier_function.lambda_handler(event, None)
    # Then it alone is reported, it is logged by type and id, and the good one is mailed
    assert result == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    [line] = logged()
    assert line["failure"] == "KeyError" and line["access_request"] == "req_1"
    assert mailer.recipients == ["lead@example.com"]


def test_a_batch_that_fails_entirely_is_reported_not_raised(
    mailer: FakeMailer, logged: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a batch whose every record fails
    event = {
        "Records": [stream_record(1, approvers="night-shift"), stream_record(2, approvers="night-shift")]
    }
    # When it reaches the notifier
    result = notifier_function.lambda_handler(event, None)
    # Then every record is reported for retry (Powertools would otherwise raise), each one logged
    assert result == {"batchItemFailures": [{"itemIdentifier": "1"}, {"itemIdentifier": "2"}]}
    assert [line["access_request"] for line in logged()] == ["req_1", "req_2"]


def test_other_changes_and_records_without_a_new_image_are_done_with(
    mailer: FakeMailer, logged: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a modification, a removal and an insert without its new image
    imageless = stream_record(3)
    del imageless["dynamodb"]["NewImage"]
    event = {"Records": [stream_record(1, event="MODIFY"), stream_record(2, event="REMOVE"), imageless]}
    # When they reach the notifier
    result = notifier_function.lambda_handler(event, None)
    # Then they count as processed: nothing to retry, nothing mailed, nothing logged
    assert result == {"batchItemFailures": []}
    assert mailer.sent == [] and logged() == []


def test_a_failure_names_the_cause_of_a_dependency_failure(
    monkeypatch: pytest.MonkeyPatch, logged: Callable[[], list[dict[str, Any]]]
) -> None:
    # Given a notifier whose dependency failed (adapters raise DependencyFailure from the AWS error)
    from agent_auth.errors import DependencyFailure

    class Unavailable:
        def notify(self, request: object) -> list[str]:
            try:
                raise TimeoutError("read timeout on endpoint URL")
            except TimeoutError as error:
                raise DependencyFailure("mail unavailable") from error

    monkeypatch.setattr(notifier_function, "notifier", Unavailable)
    # When a record arrives
    result = notifier_function.lambda_handler({"Records": [stream_record(7)]}, None)
    # Then it is retried, and the log names the failure and its cause by type
    assert result == {"batchItemFailures": [{"itemIdentifier": "7"}]}
    [line] = logged()
    assert line["failure"] == "DependencyFailure" and line["cause"] == "TimeoutError"
