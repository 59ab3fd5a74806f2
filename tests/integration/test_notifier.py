"""The notifier as Lambda runs it: a DynamoDB stream event in, one email per approver out."""

from __future__ import annotations

import copy

import pytest

from agent_auth.devserver.local_aws import mailbox
from agent_auth.handlers import notifier
from tests.conftest import REGION, Deployment
from tests.support import load_event


def test_insert_of_a_pending_request_emails_each_approver_but_the_owner(deployment: Deployment) -> None:
    result = notifier.lambda_handler(load_event("requests_stream_insert.json"), None)
    assert result == {"batchItemFailures": []}
    mails = mailbox(REGION)
    assert sorted(m["to"] for m in mails) == ["lead@example.com", "oncall@example.com"]
    assert all("Customer asked to merge duplicate contacts (ticket 4821)" in m["text"] for m in mails)
    links = {m["text"].split("/approvals/")[1].split()[0] for m in mails}
    assert len(links) == 2, "each approver gets a link of their own"
    assert deployment.audit_records()[0]["action"] == "approval.notify"


def test_other_stream_records_send_nothing(deployment: Deployment) -> None:
    event = copy.deepcopy(load_event("requests_stream_insert.json"))
    event["Records"][0]["eventName"] = "MODIFY"
    assert notifier.lambda_handler(event, None) == {"batchItemFailures": []}
    assert mailbox(REGION) == []


def test_a_failed_send_is_reported_for_retry(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_FROM", "unverified@example.org")  # SES refuses unverified senders
    notifier.container.reset()
    result = notifier.lambda_handler(load_event("requests_stream_insert.json"), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "111000000000000000000001"}]}
    record = deployment.audit_records()[0]
    assert record["action"] == "approval.notify" and record["reason"] == "send_failed"
    assert record["details"]["sent_to"] == []
