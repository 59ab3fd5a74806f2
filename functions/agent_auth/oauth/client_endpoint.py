"""Endpoints called by authenticated agents (/token, /access-requests): one audited shape for all.

Method, then the form, then a cheap stateless check, then client authentication, then the operation.
Every request ends in exactly one audit record, written before the response. If the record cannot be
written, nothing is returned: the adapter's DependencyFailure becomes a 503 (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent_auth.audit import AuditRecord, printable
from agent_auth.clock import Clock
from agent_auth.errors import (
    AgentAuthError,
    DependencyFailure,
    InvalidRequest,
    MethodNotAllowed,
    TemporarilyUnavailable,
)
from agent_auth.oauth.client_auth import AuthenticatedClient, ClientAuthenticator, Credentials, identify
from agent_auth.ports import AuditLog
from agent_auth.web.forms import Form, parse_form
from agent_auth.web.request import Request


@dataclass(frozen=True)
class Outcome:
    response: dict[str, object]
    status: int = 200
    scope: str | None = None
    audience: str | None = None
    token_id: str | None = None
    details: dict[str, object] = field(default_factory=dict)


class ClientOperation(Protocol):
    action: str
    """The audit record's action, e.g. token.issue."""

    def validate(self, form: Form) -> None:
        """Stateless checks that need no client (e.g. a supported grant_type)."""
        ...

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome: ...


_INTERNAL = AgentAuthError("Internal error", reason="internal_error")


class ClientEndpoint:
    def __init__(
        self, *, operation: ClientOperation, authenticator: ClientAuthenticator, audit: AuditLog, clock: Clock
    ) -> None:
        self._operation = operation
        self._authenticator = authenticator
        self._audit = audit
        self._clock = clock

    def handle(self, request: Request) -> Outcome:
        attempt = _Attempt(self._operation.action)
        try:
            try:
                outcome = self._perform(request, attempt)
            except DependencyFailure as failure:
                # KMS or DynamoDB failed mid-request: refuse cleanly, and still leave a record.
                raise TemporarilyUnavailable(
                    "Service temporarily unavailable", reason=f"dependency_failure:{failure}"
                ) from failure
        except AgentAuthError as error:
            self._audit.write(attempt.record(request, self._clock.now(), error=error))
            raise
        except Exception:
            # A bug, not a decision: still one record (nothing was issued), then the resolver's 500.
            self._audit.write(attempt.record(request, self._clock.now(), error=_INTERNAL))
            raise
        self._audit.write(attempt.record(request, self._clock.now(), outcome=outcome))
        return outcome

    def _perform(self, request: Request, attempt: _Attempt) -> Outcome:
        if request.method != "POST":
            raise MethodNotAllowed(("POST",))  # the query string is never read, logged or audited
        if "authorization" in request.repeated_headers:
            raise InvalidRequest("Send one Authorization header", reason="repeated_authorization")
        form = parse_form(request)
        attempt.form = form
        self._operation.validate(form)
        attempt.credentials = identify(form, request.header("authorization"))
        client = self._authenticator.authenticate(attempt.credentials)
        return self._operation.perform(client, form, int(self._clock.now()))


class _Attempt:
    """What is known about a request so far, for its one audit record."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.form: Form | None = None
        self.credentials: Credentials | None = None

    def record(
        self,
        request: Request,
        now: float,
        *,
        error: AgentAuthError | None = None,
        outcome: Outcome | None = None,
    ) -> AuditRecord:
        form = self.form
        requested_audience = printable(form.get("resource"), 256) if form else None
        return AuditRecord(
            action=self.action,
            decision="allow" if outcome else "deny",
            at=now,
            reason=error.reason if error else None,
            client_id=printable(self.credentials.client_id) if self.credentials else None,
            grant_type=printable(form.get("grant_type")) if form else None,
            auth_method=self.credentials.method if self.credentials else None,
            scope_requested=printable(form.get("scope"), 512) if form else None,
            scope_granted=outcome.scope if outcome else None,
            audience=outcome.audience if outcome else requested_audience,
            token_id=outcome.token_id if outcome else None,
            request_id=request.request_id,
            source_ip=request.source_ip,
            details={"error": error.error, "status": error.status}
            if error
            else dict(outcome.details if outcome else {}),
        )
