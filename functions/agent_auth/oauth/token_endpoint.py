"""The token endpoint (RFC 6749 §3.2): method, body, client authentication, grant, audit.

Every request ends in exactly one audit record, written before the response. If the record cannot be
written, nothing is issued: the adapter's DependencyFailure becomes a 503 (fail closed).
"""

from __future__ import annotations

from agent_auth.audit import AuditRecord, printable
from agent_auth.clock import Clock
from agent_auth.errors import (
    AgentAuthError,
    DependencyFailure,
    InvalidRequest,
    MethodNotAllowed,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from agent_auth.oauth.client_auth import ClientAuthenticator, Credentials, identify
from agent_auth.oauth.grants import GrantRegistry, IssuedToken, TokenContext
from agent_auth.ports import AuditLog
from agent_auth.web.forms import Form, parse_form
from agent_auth.web.request import Request


class TokenEndpoint:
    def __init__(
        self, *, authenticator: ClientAuthenticator, grants: GrantRegistry, audit: AuditLog, clock: Clock
    ) -> None:
        self._authenticator = authenticator
        self._grants = grants
        self._audit = audit
        self._clock = clock

    def handle(self, request: Request) -> dict[str, object]:
        attempt = _Attempt()
        try:
            try:
                issued = self._issue(request, attempt)
            except DependencyFailure as failure:
                # KMS or DynamoDB failed mid-request: refuse cleanly, and still leave a record.
                raise TemporarilyUnavailable(
                    "Service temporarily unavailable", reason=f"dependency_failure:{failure}"
                ) from failure
        except AgentAuthError as error:
            self._audit.write(attempt.record(request, self._clock.now(), error=error))
            raise
        self._audit.write(attempt.record(request, self._clock.now(), issued=issued))
        return issued.response

    def _issue(self, request: Request, attempt: _Attempt) -> IssuedToken:
        if request.method != "POST":
            raise MethodNotAllowed(("POST",))  # the query string is never read, logged or audited
        if "authorization" in request.repeated_headers:
            raise InvalidRequest("Send one Authorization header", reason="repeated_authorization")
        form = parse_form(request)
        attempt.form = form
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise InvalidRequest("grant_type is required", reason="missing_grant_type")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType("The grant type is not supported", reason="unsupported_grant_type")
        attempt.credentials = identify(form, request.header("authorization"))
        client = self._authenticator.authenticate(attempt.credentials)
        return grant.issue(TokenContext(client=client, form=form, now=int(self._clock.now())))


class _Attempt:
    """What is known about a request so far, for its one audit record."""

    def __init__(self) -> None:
        self.form: Form | None = None
        self.credentials: Credentials | None = None

    def record(
        self,
        request: Request,
        now: float,
        *,
        error: AgentAuthError | None = None,
        issued: IssuedToken | None = None,
    ) -> AuditRecord:
        form = self.form
        return AuditRecord(
            action="token.issue",
            decision="allow" if issued else "deny",
            at=now,
            reason=error.reason if error else None,
            client_id=printable(self.credentials.client_id) if self.credentials else None,
            grant_type=printable(form.get("grant_type")) if form else None,
            auth_method=self.credentials.method if self.credentials else None,
            scope_requested=printable(form.get("scope"), 512) if form else None,
            scope_granted=issued.scope if issued else None,
            audience=issued.audience if issued else (printable(form.get("resource"), 256) if form else None),
            token_id=issued.token_id if issued else None,
            request_id=request.request_id,
            source_ip=request.source_ip,
            details={"error": error.error, "status": error.status}
            if error
            else dict(issued.details if issued else {}),
        )
