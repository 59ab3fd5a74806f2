"""Metrics per outcome, derived in one place from the audit record every decision already writes.

Every decision writes exactly one audit record (docs/security.md), so counting records counts decisions:
tokens issued (by grant type) and refused (by reason), token exchanges, approval decisions, access
requests, and requests that expired before anyone decided (approvals that waited too long); what a
record counts for is agent_auth.outcome_metrics. No handler emits a metric of its own, so a new decision
is measured as soon as it is audited.

On Lambda the counts are CloudWatch embedded metric format (EMF) lines on stdout, written by Powertools'
`single_metric`: CloudWatch Logs turns them into metrics, with no PutMetricData call and no IAM action.
The stack sets POWERTOOLS_METRICS_NAMESPACE; without it (the development server, the CLI, tests) the
audit log is left undecorated and nothing is printed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from agent_auth.audit import AuditRecord
from agent_auth.errors import DependencyFailure
from agent_auth.outcome_metrics import KMS_FAILURES, Count, counts
from agent_auth.ports import AuditLog, Signer, Write

Emit = Callable[[Count], None]


class MeteredAuditLog:
    """The AuditLog port, counting each record once it is written (or, for a record written in a
    transaction, once its write is handed to the transaction: the decision is then made)."""

    def __init__(self, inner: AuditLog, emit: Emit, grant_types: Iterable[str]) -> None:
        self._inner = inner
        self._emit = emit
        self._grant_types = frozenset(grant_types)

    def write(self, record: AuditRecord) -> None:
        self._inner.write(record)  # a record that could not be written counts for nothing
        self._count(record)

    def entry(self, record: AuditRecord) -> Write:
        write = self._inner.entry(record)
        self._count(record)
        return write

    def _count(self, record: AuditRecord) -> None:
        with contextlib.suppress(Exception):  # a metric must never fail a decision already audited
            for count in counts(record, self._grant_types):
                self._emit(count)


class CountedSigner:
    """A Signer that counts failed KMS Sign calls (KmsFailures): the token endpoint still fails closed
    with 503, and the alarm says it was KMS rather than DynamoDB."""

    def __init__(self, inner: Signer, emit: Emit) -> None:
        self._inner = inner
        self._emit = emit

    # Forwarded on each use, not copied: with rotation they name the key of the moment, and reading them
    # may read the key set (adapters/kms.RotatingKmsSigner).
    @property
    def alg(self) -> str:
        return self._inner.alg

    @property
    def kid(self) -> str:
        return self._inner.kid

    def sign(self, signing_input: bytes) -> bytes:
        try:
            return self._inner.sign(signing_input)
        except DependencyFailure:
            _safely(self._emit, Count(KMS_FAILURES, ("Operation", "Sign")))
            raise


class CountedMac:
    """The approval-link key (KmsMac), counting failed GenerateMac and VerifyMac calls."""

    def __init__(self, inner: Any, emit: Emit) -> None:
        self._inner = inner
        self._emit = emit

    def generate_mac(self, message: bytes) -> bytes:
        try:
            mac: bytes = self._inner.generate_mac(message)
        except DependencyFailure:
            _safely(self._emit, Count(KMS_FAILURES, ("Operation", "GenerateMac")))
            raise
        return mac

    def verify_mac(self, message: bytes, mac: bytes) -> bool:
        try:
            valid: bool = self._inner.verify_mac(message, mac)
        except DependencyFailure:
            _safely(self._emit, Count(KMS_FAILURES, ("Operation", "VerifyMac")))
            raise
        return valid


def _safely(emit: Emit, count: Count) -> None:
    """The total (what the alarm watches) and the slice; counting never changes what the caller sees."""
    with contextlib.suppress(Exception):
        emit(Count(count.metric))
        emit(count)


def emf_emitter(namespace: str) -> Emit:
    """Counts as EMF lines, through Powertools (which adds the `service` dimension from
    POWERTOOLS_SERVICE_NAME)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    def emit(count: Count) -> None:
        with single_metric(name=count.metric, unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
            if count.dimension is not None:
                metric.add_dimension(name=count.dimension[0], value=count.dimension[1])

    return emit
