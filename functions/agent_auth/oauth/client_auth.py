"""Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7521 §4.2, RFC 7523 §2.2, §3).

`identify` looks only at the request: which single method was used and which client it claims to be.
`authenticate` proves it: a secret compared in constant time (the current one, or the previous one during
the grace period `secret rotate --grace` gave it), or a signed assertion. Every failure is
the same 401 invalid_client with a fixed description, or past a limit of failures the same 429
(oauth/throttle.py); the precise reason goes to the audit trail.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from agent_auth.clock import Clock, default_clock
from agent_auth.errors import InvalidClient, InvalidRequest
from agent_auth.names import NAME_PATTERN
from agent_auth.oauth.client_assertion import AssertionVerifier, claimed_client
from agent_auth.oauth.client_secrets import previous_secret_matches, secret_matches
from agent_auth.oauth.params import Form
from agent_auth.oauth.throttle import FailureThrottle
from agent_auth.ports import ClientReader
from agent_auth.records import PUBLIC_CLIENT, Agent

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUTH_FAILED = "Client authentication failed"
_VALID_CLIENT_ID = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Credentials:
    method: str
    client_id: str | None
    """Claimed, not proven. Used for lookup and the audit trail."""
    secret: str | None = None
    assertion: str | None = None

    @property
    def used_header(self) -> bool:
        return self.method == "client_secret_basic"


@dataclass(frozen=True)
class AuthenticatedClient:
    """A client proven by a secret or an assertion, or a public agent that named itself (method
    "none"), whose grant must prove it instead (PKCE)."""

    client_id: str
    method: str
    agent: Agent
    previous_secret: bool = False
    """Authenticated by the secret a rotation replaced, in its grace period: audited as such, so the
    operator sees who has not switched yet."""

    @property
    def audit_details(self) -> dict[str, Any]:
        return {"previous_secret": True} if self.previous_secret else {}


def identify(form: Form, authorization: str | None) -> Credentials:
    """Which method the request used. Two at once is invalid_request (RFC 6749 §2.3)."""
    used = []
    if authorization is not None:
        used.append("client_secret_basic")
    if "client_secret" in form:
        used.append("client_secret_post")
    if "client_assertion" in form or "client_assertion_type" in form:
        used.append("private_key_jwt")
    if len(used) > 1:
        raise InvalidRequest("Use exactly one client authentication method", reason="several_auth_methods")
    if not used:
        # Perhaps a public agent naming itself (RFC 6749 §2.3, §3.2.1); the operation decides whether
        # that is allowed, and the grant must then prove the client some other way (PKCE).
        return Credentials(PUBLIC_CLIENT, form.get("client_id"))
    method = used[0]
    if method == "client_secret_basic":
        client_id, secret = _parse_basic(authorization or "")
        if form.get("client_id") not in (None, client_id):
            raise InvalidRequest(
                "client_id does not match the authenticated client", reason="client_id_mismatch"
            )
        return Credentials(method, client_id, secret=secret)
    if method == "client_secret_post":
        return Credentials(method, form.get("client_id"), secret=form.get("client_secret"))
    if form.get("client_assertion_type") != JWT_BEARER or not form.get("client_assertion"):
        raise InvalidRequest(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer "
            "with a client_assertion",
            reason="bad_assertion_type",
        )
    assertion = form.get("client_assertion") or ""
    claimed = claimed_client(assertion)
    if form.get("client_id") not in (None, claimed):
        raise InvalidRequest("client_id does not match the assertion", reason="client_id_mismatch")
    return Credentials(method, claimed, assertion=assertion)


def _parse_basic(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: Basic with form-urlencoded client_id and secret."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise InvalidClient(AUTH_FAILED, reason="malformed_basic_header", used_header=True)
    try:
        decoded = base64.b64decode(encoded.strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidClient(AUTH_FAILED, reason="malformed_basic_header", used_header=True) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise InvalidClient(AUTH_FAILED, reason="malformed_basic_header", used_header=True)
    return unquote(client_id), unquote(secret)


class ClientAuthenticator:
    """Proves the client; every failure is counted (oauth/throttle.py) and may become a 429.

    An unknown client does what a known one with a wrong secret does: one read, one hash comparison,
    the same counter writes. A locked agent is refused before its secret or assertion is believed."""

    def __init__(
        self,
        clients: ClientReader,
        assertions: AssertionVerifier,
        throttle: FailureThrottle | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._clients = clients
        self._assertions = assertions
        self._throttle = throttle
        """None only in unit tests of the protocol rules; wiring always passes one."""
        self._clock = clock or default_clock()
        """Ends a previous secret's grace period."""

    def authenticate(
        self, credentials: Credentials, *, source: str, allow_public: bool = False
    ) -> AuthenticatedClient:
        """`source`: the address API Gateway saw the request come from, never a header."""
        attempt = _Lookup()
        try:
            return self._authenticate(credentials, allow_public, attempt)
        except InvalidClient as error:
            if self._throttle is None:
                raise
            refusal = self._throttle.refuse(error, agent=attempt.agent, locked=attempt.locked, source=source)
            if refusal is error:
                raise
            raise refusal from error

    def _authenticate(
        self, credentials: Credentials, allow_public: bool, attempt: _Lookup
    ) -> AuthenticatedClient:
        if credentials.method == PUBLIC_CLIENT:
            return self._identify_public(credentials, allow_public, attempt)
        if credentials.method == "private_key_jwt":
            return self._authenticate_assertion(credentials, attempt)
        agent = attempt.agent = self._lookup(credentials.client_id)
        stored = agent.secret_hash if agent else None
        # Always compare, so an unknown client costs the same as a wrong secret.
        matches = secret_matches(credentials.secret or "", stored)
        previous = previous_secret_matches(
            credentials.secret or "", agent.previous_secret_hash if agent else None
        )
        if agent is None:
            raise self._failed("unknown_client", credentials)
        self._refuse_if_locked(agent, credentials, attempt)
        if agent.auth_method != credentials.method:
            raise self._failed("method_not_registered", credentials, agent)
        if stored is None:
            raise self._failed("no_secret_set", credentials, agent)
        if previous and not matches:
            if not self._in_grace(agent):
                raise self._failed("previous_secret_expired", credentials, agent)
            return AuthenticatedClient(agent.client_id, credentials.method, agent, previous_secret=True)
        if not matches:
            raise self._failed("wrong_secret", credentials, agent)
        return AuthenticatedClient(agent.client_id, credentials.method, agent)

    def _in_grace(self, agent: Agent) -> bool:
        """Expiry in code: DynamoDB never removes the previous secret by itself."""
        until = agent.previous_secret_expires_at
        return until is not None and self._clock.now() < until

    def _identify_public(
        self, credentials: Credentials, allow_public: bool, attempt: _Lookup
    ) -> AuthenticatedClient:
        if not allow_public:
            # Nothing was presented: a known agent is named in the record, and only the source is
            # counted (naming an agent is not an attempt at its secret).
            raise self._failed("no_client_authentication", credentials, self._lookup(credentials.client_id))
        agent = attempt.agent = self._lookup(credentials.client_id)
        if agent is None:
            raise self._failed("unknown_client", credentials)
        self._refuse_if_locked(agent, credentials, attempt)
        if not agent.is_public:
            # A confidential agent must prove itself; naming it is not enough.
            raise self._failed("method_not_registered", credentials, agent)
        return AuthenticatedClient(agent.client_id, PUBLIC_CLIENT, agent)

    def _authenticate_assertion(self, credentials: Credentials, attempt: _Lookup) -> AuthenticatedClient:
        agent = attempt.agent = self._lookup(credentials.client_id)
        if agent is None:
            raise self._failed("unknown_client", credentials)
        # Before verifying: a locked agent's assertion is not believed, and its jti is not burned.
        self._refuse_if_locked(agent, credentials, attempt)
        if agent.auth_method != "private_key_jwt":
            raise self._failed("method_not_registered", credentials, agent)
        try:
            self._assertions.verify(credentials.assertion or "", agent)
        except InvalidClient as error:
            raise self._failed(error.reason, credentials, agent) from error
        return AuthenticatedClient(agent.client_id, credentials.method, agent)

    def _refuse_if_locked(self, agent: Agent, credentials: Credentials, attempt: _Lookup) -> None:
        if self._throttle is not None and self._throttle.is_locked(agent):
            attempt.locked = True
            raise self._failed("agent_locked", credentials, agent)  # the throttle answers 429

    def _lookup(self, client_id: str | None) -> Agent | None:
        if not client_id or not _VALID_CLIENT_ID.match(client_id):
            return None  # not a name any policy could give an agent: no read needed
        return self._clients.get_client(client_id)

    @staticmethod
    def _failed(reason: str, credentials: Credentials, agent: Agent | None = None) -> InvalidClient:
        return InvalidClient(
            AUTH_FAILED,
            reason=reason,
            used_header=credentials.used_header,
            known_client=agent.client_id if agent else None,
        )


@dataclass
class _Lookup:
    """The agent a failed attempt claimed to be, once read, and whether it was locked, for the throttle."""

    agent: Agent | None = None
    locked: bool = False
