"""The shell of every endpoint agents call (/token, /access-requests): one audited shape for all.

Method, then the form, then the operation's stateless check, then client authentication as the
operation asks (required, or a public agent naming itself), then the operation. Every request ends in
exactly one audit record, written before the response. If the record cannot be written, nothing is
returned: the adapter's DependencyFailure becomes a 503 (fail closed).

Nothing a client sends before it is authenticated is recorded as sent: an unknown client_id, a scope
or a resource of a refused request appear as fingerprints (audit.unverified).
"""

from __future__ import annotations

from agent_auth.audit import AuditRecord, printable, unverified
from agent_auth.clock import Clock
from agent_auth.errors import (
    AgentAuthError,
    DependencyFailure,
    InvalidClient,
    InvalidRequest,
    MethodNotAllowed,
    TemporarilyUnavailable,
)
from agent_auth.oauth.client_auth import (
    AUTH_FAILED,
    AuthenticatedClient,
    ClientAuthenticator,
    Credentials,
    identify,
)
from agent_auth.oauth.operation import ClientAuthentication, ClientOperation, Outcome
from agent_auth.oauth.params import Form
from agent_auth.ports import AuditLog
from agent_auth.web.forms import parse_form
from agent_auth.web.request import Request

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
        attempt.validated = True
        credentials = attempt.credentials = identify(form, request.header("authorization"))
        allow_public = self._operation.client_authentication(form) is ClientAuthentication.PUBLIC_ALLOWED
        client = self._authenticator.authenticate(
            credentials, source=request.source_ip, allow_public=allow_public
        )
        attempt.client = client
        if client.agent.disabled:
            # The kill switch (`agent-auth agents disable`): every endpoint agents call refuses it, as
            # a failed authentication would, without counting a failure against its secret.
            raise InvalidClient(AUTH_FAILED, reason="agent_disabled", used_header=credentials.used_header)
        return self._operation.perform(client, form, int(self._clock.now()))


class _Attempt:
    """What is known about a request so far, for its one audit record."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.form: Form | None = None
        self.credentials: Credentials | None = None
        self.client: AuthenticatedClient | None = None
        self.validated = False
        """The operation's stateless checks passed: e.g. grant_type names a supported grant type."""

    def _client_id(self, error: AgentAuthError | None) -> str | None:
        if self.client is not None:
            return self.client.client_id
        if isinstance(error, InvalidClient) and error.known_client:
            return error.known_client  # an agent that exists, though not proven: its name is not input
        return unverified(self.credentials.client_id) if self.credentials else None

    def _requested(self, name: str, limit: int, outcome: Outcome | None) -> str | None:
        """A requested value as sent only once the client is proven and the request allowed; before
        that, a fingerprint (what an unauthenticated client sends is never stored as sent, and a
        refused scope or resource was never validated: it may be a secret pasted in the wrong field)."""
        value = self.form.get(name) if self.form else None
        if value is None:
            return None
        return printable(value, limit) if outcome is not None else unverified(value)

    def record(
        self,
        request: Request,
        now: float,
        *,
        error: AgentAuthError | None = None,
        outcome: Outcome | None = None,
    ) -> AuditRecord:
        form = self.form
        grant_type = form.get("grant_type") if form else None
        return AuditRecord(
            action=self.action,
            decision="allow" if outcome else "deny",
            at=now,
            reason=error.reason if error else None,
            client_id=self._client_id(error),
            user=outcome.user if outcome else (error.user if error else None),
            actor_chain=_chain(outcome) if outcome else (error.actor_chain if error else None),
            token_family=outcome.token_family if outcome else None,
            grant_type=grant_type if self.validated else unverified(grant_type),
            auth_method=self.credentials.method if self.credentials else None,
            scope_requested=self._requested("scope", 512, outcome),
            scope_granted=outcome.scope if outcome else None,
            audience=outcome.audience if outcome else self._requested("resource", 256, outcome),
            token_id=outcome.token_id if outcome else None,
            http_request_id=request.http_request_id,
            source_ip=request.source_ip,
            details={
                **({"error": error.error, "status": error.status} if error else {}),
                **(dict(outcome.details) if outcome and not error else {}),
                # A previous secret (in its grace period after a rotation) says so in every record.
                **(self.client.audit_details if self.client else {}),
            },
        )


def _chain(outcome: Outcome | None) -> tuple[str, ...] | None:
    """The agents acting for the subject, outermost (the most recent) first (RFC 8693 §4.1)."""
    chain: list[str] = []
    act = outcome.act if outcome else None
    while isinstance(act, dict) and isinstance(act.get("sub"), str) and len(chain) < 16:
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain) or None
