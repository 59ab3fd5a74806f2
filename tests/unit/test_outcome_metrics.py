"""Metrics per outcome, derived from audit records (outcome_metrics, adapters.audit_metrics)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent_auth import outcome_metrics as m
from agent_auth.adapters.audit_metrics import CountedMac, CountedSigner, MeteredAuditLog, emf_emitter
from agent_auth.audit import AuditRecord
from agent_auth.errors import DependencyFailure
from agent_auth.grant_catalog import grant_type_names
from agent_auth.ports import Write

GRANT_TYPES = frozenset(grant_type_names())
CC = "client_credentials"


def record(action: str = "token.issue", decision: str = "allow", **fields: Any) -> AuditRecord:
    return AuditRecord(action=action, decision=decision, at=1_800_000_000.0, **fields)


def test_an_issued_token_counts_in_total_and_by_grant_type() -> None:
    assert m.counts(record(grant_type=CC), GRANT_TYPES) == [
        m.Count(m.TOKENS_ISSUED),
        m.Count(m.TOKENS_ISSUED, ("GrantType", CC)),
    ]


def test_a_refused_token_counts_in_total_and_by_reason() -> None:
    counted = m.counts(record(decision="deny", reason="invalid_client", grant_type=CC), GRANT_TYPES)
    assert counted == [m.Count(m.TOKENS_REFUSED), m.Count(m.TOKENS_REFUSED, ("Reason", "invalid_client"))]


@pytest.mark.parametrize("reason", ["pending", "slow_down"])
def test_a_poll_while_the_request_waits_is_not_a_refusal(reason: str) -> None:
    assert m.counts(record(decision="deny", reason=reason), GRANT_TYPES) == [m.Count(m.PENDING_POLLS)]


def test_a_request_found_expired_counts_as_waiting_too_long() -> None:
    counted = m.counts(record(decision="deny", reason="request_expired"), GRANT_TYPES)
    assert m.Count(m.REQUESTS_EXPIRED) in counted
    assert m.Count(m.TOKENS_REFUSED) in counted


def test_values_a_client_made_up_become_other() -> None:
    # Given a grant type nobody serves and an unverified fingerprint as grant type, and a reason that is
    # not spelled like code
    made_up = record(decision="deny", reason="Bad Reason!", grant_type="unverified:0123456789ab:9")
    unknown = record(grant_type="urn:example:made-up")

    # Then no dimension holds them: each is "other" (a dimension value per request would be a metric each)
    assert m.Count(m.TOKENS_REFUSED, ("Reason", "other")) in m.counts(made_up, GRANT_TYPES)
    assert m.Count(m.TOKENS_ISSUED, ("GrantType", "other")) in m.counts(unknown, GRANT_TYPES)


def test_a_token_exchange_counts_as_an_exchange() -> None:
    counted = m.counts(record(grant_type=m.TOKEN_EXCHANGE), GRANT_TYPES)
    assert m.Count(m.EXCHANGES, ("Decision", "allow")) in counted
    assert m.Count(m.TOKENS_ISSUED, ("GrantType", m.TOKEN_EXCHANGE)) in counted


def test_approval_decisions_count_by_outcome() -> None:
    assert m.counts(record("approval.decide", reason="approved"), GRANT_TYPES) == [
        m.Count(m.APPROVAL_DECISIONS, ("Outcome", "approved"))
    ]
    assert m.counts(record("approval.decide", "deny", reason="already_decided"), GRANT_TYPES) == [
        m.Count(m.APPROVAL_DECISIONS, ("Outcome", "already_decided"))
    ]


def test_access_requests_count_by_decision_and_other_actions_count_nothing() -> None:
    assert m.counts(record("access.request", "deny", reason="never"), GRANT_TYPES) == [
        m.Count(m.ACCESS_REQUESTS, ("Decision", "deny"))
    ]
    assert m.counts(record("approval.view"), GRANT_TYPES) == []


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[AuditRecord] = []
        self.fail = fail

    def write(self, record: AuditRecord) -> None:
        if self.fail:
            raise RuntimeError("the table is unavailable")
        self.records.append(record)

    def entry(self, record: AuditRecord) -> Write:
        self.records.append(record)
        return Write({"Put": {"TableName": "audit", "Item": {}}})


def test_the_metered_log_writes_first_then_counts() -> None:
    # Given a metered audit log over a table that works
    inner, emitted = Recording(), list[m.Count]()
    log = MeteredAuditLog(inner, emitted.append, GRANT_TYPES)

    # When a decision is audited, directly and as a transaction entry
    log.write(record(grant_type=CC))
    write = log.entry(record("approval.decide", reason="denied"))

    # Then both reach the table (the entry unchanged) and each counts once
    assert len(inner.records) == 2
    assert write.operation == {"Put": {"TableName": "audit", "Item": {}}}
    assert [c.metric for c in emitted] == [m.TOKENS_ISSUED, m.TOKENS_ISSUED, m.APPROVAL_DECISIONS]


def test_a_record_that_could_not_be_written_counts_nothing() -> None:
    emitted: list[m.Count] = []
    log = MeteredAuditLog(Recording(fail=True), emitted.append, GRANT_TYPES)
    with pytest.raises(RuntimeError):
        log.write(record(grant_type=CC))
    assert emitted == []


def test_a_failing_metric_never_fails_the_decision() -> None:
    def broken(count: m.Count) -> None:
        raise ValueError("stdout is closed")

    inner = Recording()
    MeteredAuditLog(inner, broken, GRANT_TYPES).write(record(grant_type=CC))
    assert len(inner.records) == 1


def test_emf_lines_name_the_namespace_metric_and_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the service name Lambda functions get from the stack
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "agent-auth")

    # When one sliced count is emitted
    emf_emitter("agent-auth/Test")(m.Count(m.TOKENS_REFUSED, ("Reason", "invalid_client")))

    # Then one EMF line says so, with the service dimension the alarms use
    (line,) = capsys.readouterr().out.splitlines()
    emf = json.loads(line)
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "agent-auth/Test"
    assert directive["Metrics"] == [{"Name": m.TOKENS_REFUSED, "Unit": "Count"}]
    assert sorted(directive["Dimensions"][0]) == ["Reason", "service"]
    assert emf["Reason"] == "invalid_client" and emf["service"] == "agent-auth"
    assert emf[m.TOKENS_REFUSED] == [1.0]


def test_a_dependency_failure_counts_by_action_and_the_notifier_by_outcome() -> None:
    failed = record(decision="deny", reason="dependency_failure:ClientError", grant_type=CC)
    assert m.Count(m.DEPENDENCY_FAILURES, ("Action", "token_issue")) in m.counts(failed, GRANT_TYPES)
    assert m.counts(record("approval.notify"), GRANT_TYPES) == [m.Count(m.NOTIFICATIONS, ("Outcome", "sent"))]
    assert m.counts(record("approval.notify", "deny", reason="send_failed"), GRANT_TYPES) == [
        m.Count(m.NOTIFICATIONS, ("Outcome", "send_failed"))
    ]


class FailingKms:
    alg, kid = "RS256", "kid-1"

    def sign(self, signing_input: bytes) -> bytes:
        raise DependencyFailure("ClientError")

    def generate_mac(self, message: bytes) -> bytes:
        raise DependencyFailure("ClientError")

    def verify_mac(self, message: bytes, mac: bytes) -> bool:
        raise DependencyFailure("ClientError")


def test_failed_kms_calls_are_counted_and_still_fail() -> None:
    # Given the KMS wrappers over a KMS that fails every call
    emitted: list[m.Count] = []
    signer, mac = CountedSigner(FailingKms(), emitted.append), CountedMac(FailingKms(), emitted.append)

    # When each call is made / Then each still raises (503) and is counted, in total and by operation
    assert (signer.alg, signer.kid) == ("RS256", "kid-1")
    for call in (
        lambda: signer.sign(b"x"),
        lambda: mac.generate_mac(b"x"),
        lambda: mac.verify_mac(b"x", b"y"),
    ):
        with pytest.raises(DependencyFailure):
            call()
    assert emitted == [
        count
        for name in ("Sign", "GenerateMac", "VerifyMac")
        for count in (m.Count(m.KMS_FAILURES), m.Count(m.KMS_FAILURES, ("Operation", name)))
    ]
