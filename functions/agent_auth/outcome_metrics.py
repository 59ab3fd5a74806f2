"""Metrics per outcome: what one audit record counts for (shared by the metrics adapter and the CDK
alarms, so the names cannot drift).

Dimensions only ever hold values from a closed set (grant types of the catalog, reasons as the code
spells them): a value sent by a client, such as an unknown grant_type, is counted as "other", so nobody
can create CloudWatch metrics (billed each) by sending made-up values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_auth.audit import AuditRecord

NAMESPACE_ENV = "POWERTOOLS_METRICS_NAMESPACE"

TOKENS_ISSUED = "TokensIssued"
TOKENS_REFUSED = "TokensRefused"
"""Refused token requests, not counting an access request's polls while it waits (PENDING_POLLS)."""
PENDING_POLLS = "PendingPolls"
"""authorization_pending and slow_down answers to the access-request grant: the protocol, not a refusal."""
EXCHANGES = "TokenExchanges"
APPROVAL_DECISIONS = "ApprovalDecisions"
ACCESS_REQUESTS = "AccessRequests"
REQUESTS_EXPIRED = "AccessRequestsExpired"
"""A poll or an approver's click found the request expired while pending: nobody decided in time."""

NOTIFICATIONS = "ApprovalNotifications"
"""Approval emails: sent, or why not (send_failed: SES refused; no_approvers: nobody to ask)."""
DEPENDENCY_FAILURES = "DependencyFailures"
"""Decisions refused with 503 because KMS or DynamoDB failed (fail closed), by action."""
KMS_FAILURES = "KmsFailures"
"""KMS calls that failed (Sign, GenerateMac, VerifyMac), counted at the call by the adapter's wrapper."""

ALL_METRICS = (
    TOKENS_ISSUED,
    TOKENS_REFUSED,
    PENDING_POLLS,
    EXCHANGES,
    APPROVAL_DECISIONS,
    ACCESS_REQUESTS,
    REQUESTS_EXPIRED,
    NOTIFICATIONS,
    DEPENDENCY_FAILURES,
    KMS_FAILURES,
)

TOKEN_ACTION = "token.issue"
APPROVAL_ACTION = "approval.decide"
ACCESS_REQUEST_ACTION = "access.request"
NOTIFY_ACTION = "approval.notify"
DEPENDENCY_FAILURE_PREFIX = "dependency_failure:"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
"""RFC 8693 §2.1."""
WAITING_REASONS = frozenset({"pending", "slow_down"})
EXPIRED_REASON = "request_expired"
OTHER = "other"
_CODE_SPELLING = re.compile(r"[a-z][a-z0-9_]{0,47}")
_GRANT_TYPE_SPELLING = re.compile(r"[a-z][a-z0-9_:.-]{0,79}")


@dataclass(frozen=True)
class Count:
    """One unit of one metric: the total (dimension None) or one slice of it."""

    metric: str
    dimension: tuple[str, str] | None = None


def _code(value: str | None) -> str:
    return value if value is not None and _CODE_SPELLING.fullmatch(value) else OTHER


def _grant_type(value: str | None, known: frozenset[str]) -> str:
    return value if value in known and _GRANT_TYPE_SPELLING.fullmatch(value) else OTHER


def _total_and_slice(metric: str, name: str, value: str) -> list[Count]:
    # Alarms need the total as its own metric (an alarm cannot sum a dimension's values itself).
    return [Count(metric), Count(metric, (name, value))]


def counts(record: AuditRecord, grant_types: frozenset[str]) -> list[Count]:
    """What one audit record counts for. `grant_types` are the names the token endpoint serves."""
    allowed = record.decision == "allow"
    result: list[Count] = []
    if record.action == TOKEN_ACTION:
        grant_type = _grant_type(record.grant_type, grant_types | {TOKEN_EXCHANGE})
        reason = _code(record.reason)
        if allowed:
            result += _total_and_slice(TOKENS_ISSUED, "GrantType", grant_type)
        elif reason in WAITING_REASONS:
            result.append(Count(PENDING_POLLS))
        else:
            # A dependency failure keeps its own metric (below); its reason names an exception class.
            result += _total_and_slice(TOKENS_REFUSED, "Reason", reason)
        if grant_type == TOKEN_EXCHANGE:
            result.append(Count(EXCHANGES, ("Decision", record.decision)))
    elif record.action == APPROVAL_ACTION:
        # A decision made is audited as allowed with the request's new status (approved, denied) as
        # its reason; one refused (expired, already decided, bad link) with why.
        result.append(Count(APPROVAL_DECISIONS, ("Outcome", _code(record.reason))))
    elif record.action == ACCESS_REQUEST_ACTION:
        result.append(Count(ACCESS_REQUESTS, ("Decision", "allow" if allowed else "deny")))
    elif record.action == NOTIFY_ACTION:
        result.append(Count(NOTIFICATIONS, ("Outcome", "sent" if allowed else _code(record.reason))))
    if not allowed and (record.reason or "").startswith(DEPENDENCY_FAILURE_PREFIX):
        result.append(Count(DEPENDENCY_FAILURES, ("Action", _code(record.action.replace(".", "_")))))
    if not allowed and record.reason == EXPIRED_REASON and record.action in (TOKEN_ACTION, APPROVAL_ACTION):
        result.append(Count(REQUESTS_EXPIRED))
    return result
