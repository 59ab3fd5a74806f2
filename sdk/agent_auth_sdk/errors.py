"""The SDK's exceptions. OAuth failures carry the server's `error` and `error_description` (RFC 6749
§5.2); a resource server's refusals carry what RFC 6750 §3 puts in `WWW-Authenticate`."""

from __future__ import annotations


class AgentAuthError(Exception):
    """Anything the SDK could not do: a network failure, a malformed answer, a misconfiguration."""


class OAuthError(AgentAuthError):
    """The authorization server answered with an OAuth error (RFC 6749 §5.2, RFC 8693 §2.2.2)."""

    def __init__(self, error: str, error_description: str | None = None, status: int | None = None) -> None:
        self.error = error
        self.error_description = error_description
        self.status = status
        super().__init__(f"{error}: {error_description}" if error_description else error)


class AccessDenied(OAuthError):
    """An approver denied the access request (`access_denied` while polling)."""


class RequestExpired(OAuthError):
    """The access request was not decided in time (`expired_token` while polling)."""


class TokenRejected(AgentAuthError):
    """A resource server refused a token. `error` is `invalid_token` (401) or `insufficient_scope` (403)."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str) -> None:
        self.error_description = description
        super().__init__(description)

    def www_authenticate(self, resource_metadata: str | None = None, scope: str | None = None) -> str:
        """The challenge for the response (RFC 6750 §3, RFC 9728 §5.1 `resource_metadata`)."""
        parts = [f'error="{self.error}"', f'error_description="{self.error_description}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if resource_metadata:
            parts.append(f'resource_metadata="{resource_metadata}"')
        return "Bearer " + ", ".join(parts)


class InvalidToken(TokenRejected):
    """Missing, malformed, forged, expired, foreign or inactive: RFC 6750 §3.1 `invalid_token`."""


class InsufficientScope(TokenRejected):
    """A valid token without a scope the call needs: RFC 6750 §3.1 `insufficient_scope`."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, required: tuple[str, ...]) -> None:
        self.required = required
        super().__init__("The token lacks a required scope")

    def www_authenticate(self, resource_metadata: str | None = None, scope: str | None = None) -> str:
        return super().www_authenticate(resource_metadata, scope or " ".join(self.required))
