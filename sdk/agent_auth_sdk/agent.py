"""`AgentAuth`: an agent's side of agent-auth. Client credentials (RFC 6749 §4.4) with a cache,
just-in-time elevation (`request_access`), token exchange (RFC 8693), introspection (RFC 7662) and
revocation (RFC 7009)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent_auth_sdk.client_auth import AssertionAuth, ClientAuth, SecretAuth, SecretMethod
from agent_auth_sdk.discovery import discover, endpoint
from agent_auth_sdk.errors import AccessDenied, AgentAuthError, OAuthError, RequestExpired
from agent_auth_sdk.tokens import Token, TokenCache
from agent_auth_sdk.transport import Response, transport_for

if TYPE_CHECKING:
    from agent_auth_sdk.access import AccessRequest
    from agent_auth_sdk.http_auth import BearerAuth

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ACCESS_REQUEST_GRANT = "urn:agent-auth:grant-type:access-request"
_ERRORS: dict[str, type[OAuthError]] = {"access_denied": AccessDenied, "expired_token": RequestExpired}


def oauth_error(answer: Response) -> AgentAuthError:
    """RFC 6749 §5.2: the error body, as a typed exception; anything else says what came back."""
    try:
        body = answer.json()
    except AgentAuthError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        description = body.get("error_description")
        kind = _ERRORS.get(body["error"], OAuthError)
        return kind(body["error"], description if isinstance(description, str) else None, answer.status)
    return AgentAuthError(f"The server answered {answer.status} without an OAuth error")


class AgentAuth:
    """One agent's identity at one issuer. Thread-safe; share one instance per process.

    `private_key`: a `cryptography` key, PEM, or a private JWK (private_key_jwt; `kid` names the
    registered public key). `client_secret`: client_secret_basic, or `auth_method="client_secret_post"`.
    `http`: an httpx / httpx2 client to send through (the standard library otherwise).
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        private_key: Any = None,
        kid: str | None = None,
        client_secret: str | None = None,
        auth_method: SecretMethod = "client_secret_basic",
        http: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (private_key is None) == (client_secret is None):
            raise ValueError("Give exactly one of private_key and client_secret")
        self.issuer = issuer
        self.client_id = client_id
        self._credentials: ClientAuth = (
            AssertionAuth(client_id, private_key, kid, clock)
            if private_key is not None
            else SecretAuth(client_id, str(client_secret), auth_method)
        )
        self._http = transport_for(http)
        self._clock = clock
        self._sleep = sleep
        self._metadata: dict[str, Any] | None = None
        self._metadata_lock = threading.Lock()
        self._cache = TokenCache(clock)

    @property
    def metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata, fetched on first use."""
        if self._metadata is None:
            with self._metadata_lock:
                if self._metadata is None:
                    self._metadata = discover(self.issuer, self._http)
        return self._metadata

    def post(self, endpoint_name: str, form: dict[str, str]) -> Response:
        """An authenticated form post to one of the metadata's endpoints."""
        url = endpoint(self.metadata, endpoint_name)
        headers = self._credentials.apply(form, self.issuer)
        return self._http.post(url, form, headers)

    def grant(self, form: dict[str, str]) -> Token:
        """POST /token with any grant type; the answer as a `Token`, or the OAuth error raised."""
        sent_at = self._clock()
        answer = self.post("token_endpoint", form)
        if answer.status != 200:
            raise oauth_error(answer)
        return Token.from_response(answer.json(), sent_at)

    def token(self, scope: str | None = None, resource: str | None = None) -> Token:
        """A client-credentials token, shared until 75% of its life and then renewed by one caller."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        if resource:
            form["resource"] = resource  # RFC 8707 §2
        return self._cache.get((scope or "", resource or ""), lambda: self.grant(dict(form)))

    async def atoken(self, scope: str | None = None, resource: str | None = None) -> Token:
        """`token` for async code: the cached token at once, a renewal on a worker thread."""
        cached = self._cache.fresh((scope or "", resource or ""))
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.token, scope, resource)

    def forget(self, scope: str | None, resource: str | None, token: Token | None = None) -> None:
        self._cache.forget((scope or "", resource or ""), token)

    def request_access(
        self,
        scope: str,
        reason: str,
        duration: int | None = None,
        resource: str | None = None,
    ) -> AccessRequest:
        """Ask for elevation (`POST access_request_endpoint`); `.wait()` on the result for the token."""
        from agent_auth_sdk.access import AccessRequest

        form = {"scope": scope, "reason": reason}
        if duration is not None:
            form["duration"] = str(int(duration))
        if resource:
            form["resource"] = resource
        answer = self.post("access_request_endpoint", form)
        if answer.status not in (200, 202):
            raise oauth_error(answer)
        return AccessRequest.from_response(self, scope, answer.json(), self._clock, self._sleep)

    def poll(self, request_id: str) -> Token:
        """One poll for an access request (CIBA-style); raises `authorization_pending` and the rest."""
        return self.grant({"grant_type": ACCESS_REQUEST_GRANT, "request_id": request_id})

    def exchange(
        self,
        subject_token: str,
        resource: str | None = None,
        scope: str | None = None,
        *,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        actor_token: str | None = None,
        actor_token_type: str | None = None,
        requested_token_type: str | None = None,
    ) -> Token:
        """On-behalf-of (RFC 8693 §2.1): a user's token in, a narrower one for `resource` out."""
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": subject_token_type,
        }
        optional = {
            "resource": resource,
            "scope": scope,
            "actor_token": actor_token,
            "actor_token_type": actor_token_type,
            "requested_token_type": requested_token_type,
        }
        if (actor_token is None) != (actor_token_type is None):
            raise ValueError("actor_token and actor_token_type go together (RFC 8693 §2.1)")
        form.update({name: value for name, value in optional.items() if value is not None})
        token = self.grant(form)
        if token.issued_token_type is None:
            raise AgentAuthError("The exchange response has no issued_token_type (RFC 8693 §2.2.1)")
        return token

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 §2: the server's view of a token, as this agent (a resource server) may see it."""
        answer = self.post("introspection_endpoint", {"token": token, "token_type_hint": "access_token"})
        if answer.status != 200:
            raise oauth_error(answer)
        body = answer.json()
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise AgentAuthError("The introspection response has no boolean active")
        return body

    def revoke(self, token: str, token_type_hint: str = "access_token") -> None:  # noqa: S107 (a hint)
        """RFC 7009 §2.1: revoke one of this agent's tokens (an access token, or `refresh_token`).

        The server answers 200 even for a token it does not know or that is already revoked (§2.2), so
        a return says only that nothing more is to be done; an error is raised as an `OAuthError`. A
        cached token equal to `token` is dropped, so `token()` asks for a new one."""
        answer = self.post("revocation_endpoint", {"token": token, "token_type_hint": token_type_hint})
        if answer.status != 200:
            raise oauth_error(answer)
        self._cache.forget_token(token)

    def auth(self, resource: str | None = None, scope: str | None = None) -> BearerAuth:
        """An `auth=` for httpx and httpx2 clients: sends this agent's token, renews it when refused."""
        from agent_auth_sdk.http_auth import bearer_auth

        return bearer_auth(self, resource=resource, scope=scope)
