"""The notifier as Lambda runs it: a DynamoDB stream event in, one email per approver out."""

from __future__ import annotations

import copy
import io
import json
import logging

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


def test_one_unreadable_record_is_retried_alone_and_the_good_one_is_mailed(deployment: Deployment) -> None:
    # Given a batch of the recorded insert and a record whose image lost its client_id
    good = load_event("requests_stream_insert.json")["Records"][0]
    broken = copy.deepcopy(good)
    del broken["dynamodb"]["NewImage"]["client_id"]
    broken["dynamodb"]["SequenceNumber"] = "111000000000000000000002"
    handler = notifier.logger.logger_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        # When the batch reaches the notifier
        result = notifier.lambda_handler({"Records": [good, broken]}, None)
    finally:
        handler.setStream(previous)
    # Then only the broken record is reported, it is logged by type and id, and the good one is mailed
    assert result == {"batchItemFailures": [{"itemIdentifier": "111000000000000000000002"}]}
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["failure"] == "KeyError" and line["access_request"] == "req_Zx8kQ2v7R1mN4pT6yW9bCg"
    assert sorted(m["to"] for m in mailbox(REGION)) == ["lead@example.com", "oncall@example.com"]
