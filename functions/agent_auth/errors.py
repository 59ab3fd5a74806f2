"""Errors as types (RFC 6749 §5.2 and friends).

Every error carries its RFC code, its HTTP status and a fixed description chosen at the raise site.
`reason` is for the audit trail only and never reaches the client; exception text never does either.
"""

from __future__ import annotations

from typing import ClassVar


class AgentAuthError(Exception):
    """Base of every error the resolver knows how to render."""

    error: ClassVar[str] = "server_error"
    status: ClassVar[int] = 500

    def __init__(self, description: str, *, reason: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason or self.error
        self.user: str | None = None
        """For the audit trail of a refusal: the user a verified token acted for (never request input)."""
        self.actor_chain: tuple[str, ...] | None = None
        """For the audit trail of a refused exchange: the agents that would have stood between, newest
        first, taken from a verified subject token."""

    def headers(self) -> dict[str, str]:
        return {}


class OAuthError(AgentAuthError):
    """An error with an RFC 6749 §5.2 code."""


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status = 400


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: 401, with WWW-Authenticate when the client used the Authorization header."""

    error = "invalid_client"
    status = 401

    def __init__(
        self,
        description: str,
        *,
        reason: str | None = None,
        used_header: bool = False,
        known_client: str | None = None,
    ) -> None:
        super().__init__(description, reason=reason)
        self.used_header = used_header
        self.known_client = known_client
        """The agent the request claimed to be, when that agent exists: safe to name in the audit trail."""

    def headers(self) -> dict[str, str]:
        if self.used_header:
            return {"WWW-Authenticate": 'Basic realm="agent-auth", error="invalid_client"'}
        return {}


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status = 400


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the resource is invalid, unknown or not allowed for this client."""

    error = "invalid_target"
    status = 400


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class PollAccessDenied(AccessDenied):
    """At the token endpoint every error but invalid_client is a 400 (RFC 6749 §5.2, CIBA §11)."""

    status = 400


class AuthorizationPending(OAuthError):
    """CIBA §11 / RFC 8628 §3.5: the request is still waiting for a human."""

    error = "authorization_pending"
    status = 400


class SlowDown(OAuthError):
    """CIBA §11: polling faster than the interval the client was given."""

    error = "slow_down"
    status = 400


class ExpiredToken(OAuthError):
    """CIBA §11: the request expired before anyone decided."""

    error = "expired_token"
    status = 400


class TemporarilyUnavailable(OAuthError):
    """A dependency (DynamoDB, KMS) failed or timed out: refuse cleanly rather than guess."""

    error = "temporarily_unavailable"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class TooManyFailures(InvalidClient):
    """Too many failed client authentications in a window (oauth/throttle.py): 429 (RFC 6585 §4) with
    Retry-After (RFC 9110 §10.2.3), and RFC 6749's `temporarily_unavailable` code.

    A kind of InvalidClient, so that the audit record names the agent when it exists, as for any refused
    client authentication; but no WWW-Authenticate challenge: retrying now would not help."""

    error = "temporarily_unavailable"
    status = 429
    DESCRIPTION = "Too many failed client authentications; retry later"

    def __init__(self, *, reason: str, retry_after: int, known_client: str | None = None) -> None:
        super().__init__(self.DESCRIPTION, reason=reason, known_client=known_client)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MethodNotAllowed(AgentAuthError):
    error = "invalid_request"
    status = 405

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__("Method not allowed", reason="method_not_allowed")
        self.allowed = allowed

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class NotFound(AgentAuthError):
    error = "not_found"
    status = 404


class DependencyFailure(Exception):
    """Raised by adapters when AWS fails; the resolver answers 503 temporarily_unavailable."""
