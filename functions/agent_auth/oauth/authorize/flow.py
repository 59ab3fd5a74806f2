"""The authorization endpoint's flow: validate, sign the user in upstream, ask consent, issue a code.

    GET /authorize ─▶ validated ─▶ no session: SignIn stored, 302 to the upstream provider
                                └▶ session: narrowed to the user's roles ─▶ remembered consent: code
                                                                          └▶ 302 to the consent page
    GET /authorize/callback ─▶ from the browser that started it ─▶ upstream ID token checked
                               ─▶ session cookie ─▶ as above
    GET /authorize/consent ─▶ the page;  POST Allow ─▶ code (one transaction: sign-in ended, code, consent,
                                          audit);  POST Deny ─▶ error=access_denied
    GET /authorize/approver ─▶ SignIn with a return target (an approval page), 302 upstream
                              └▶ callback: session cookie, 302 back to that approval page

Every outcome is a `Redirect`, a `ConsentPage` or an `ErrorPage` for the browser shell to render, and
every call writes exactly one audit record. Authorization responses carry `iss` (RFC 9207).

Login CSRF (RFC 9700 §4.7.1; OpenID Connect Core §3.1.2.1): the `state` we send upstream would let
anyone who started a sign-in, and signed in as themselves, send the callback URL to someone else, whose
browser would then hold the sender's session. So each upstream sign-in also sets a cookie of its own
(`SignInCookie`) whose hash the SignIn keeps; the callback completes only in the browser holding it,
and ends the sign-in otherwise.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from agent_auth.audit import AuditRecord, unverified
from agent_auth.clock import Clock
from agent_auth.names import NAME_PATTERN
from agent_auth.oauth.authorize.request import (
    AGENT_DISABLED,
    OIDC_SCOPES,
    AuthorizePageError,
    AuthorizeRedirectError,
    ValidatedRequest,
    validate_authorization_request,
)
from agent_auth.oauth.authorize.stores import (
    CodeStore,
    ConsentStore,
    SessionStore,
    SignInStore,
    UserDirectoryReader,
    session_hash,
)
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.upstream.relying_party import Callback, UpstreamIdentity, UpstreamRejected
from agent_auth.ports import AuditLog, ClientReader, Transaction
from agent_auth.records import Agent, AuthorizationCode, Consent, SignIn, UserSession

SIGN_IN_SECONDS = 600
"""How long a user has to sign in and decide."""
SESSION_SECONDS = 8 * 3600
CODE_SECONDS = 60
"""RFC 6749 §4.1.2 recommends at most ten minutes; a code is redeemed at once, so one minute."""
_VALID_NAME = re.compile(NAME_PATTERN)
_SIGN_IN_ID = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
APPROVAL_PAGE = re.compile(r"/approvals/[A-Za-z0-9_-]{1,64}\?[A-Za-z0-9_.~%&=+-]{1,2048}")
"""Where an approver's sign-in may return: one of our approval pages, as a path under the issuer with
a URL-encoded query. No scheme, host, `//`, backslash or fragment can match, so the redirect after
sign-in never leaves the issuer (no open redirect)."""


class Upstream(Protocol):
    """The company's OpenID provider, as a relying party sees it (oauth/upstream/relying_party.py).
    Refusals raise UpstreamRejected; an unreachable provider, UpstreamUnavailable (a 503)."""

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str: ...

    def callback(self, params: Mapping[str, str]) -> Callback:
        """The provider's response at our redirect URI, checked (error, iss: RFC 9207)."""
        ...

    def complete(self, code: str, *, nonce: str, code_verifier: str) -> UpstreamIdentity: ...


@dataclass(frozen=True)
class SignInCookie:
    """The cookie that binds an upstream sign-in to the browser that started it (stores.sign_in_cookie_name
    names it): set with `value` when the sign-in starts, cleared (`value` None) by its callback."""

    sign_in_id: str
    value: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Redirect:
    location: str
    new_session: str | None = field(default=None, repr=False)
    """A session cookie value to set (after a sign-in)."""
    sign_in_cookie: SignInCookie | None = None


@dataclass(frozen=True)
class ErrorPage:
    status: int
    title: str
    message: str
    sign_in_cookie: SignInCookie | None = None
    """Set by a callback that ended a sign-in: its cookie is cleared."""


@dataclass(frozen=True)
class ConsentPage:
    sign_in_id: str
    agent: Agent
    user: str
    redirect_host: str
    redirect_origin: str
    """scheme://host:port of the redirect URI: where the form's POST ends (CSP form-action)."""
    audience: str
    scopes: tuple[tuple[str, str], ...]
    """Each scope with its description."""


Result = Redirect | ErrorPage | ConsentPage


@dataclass(frozen=True)
class FlowOutcome:
    """What happened, and its one audit record: `committed` when the record was already written in the
    transaction that made the change; otherwise the caller (the browser shell) writes it."""

    result: Result
    audit: AuditRecord
    committed: bool = False


def redirect_to_client(redirect_uri: str, issuer: str, **params: str | None) -> str:
    """RFC 6749 §4.1.2 and RFC 9207: the parameters added to the registered URI's own query."""
    query = urlencode({k: v for k, v in {**params, "iss": issuer}.items() if v is not None})
    return f"{redirect_uri}{'&' if urlsplit(redirect_uri).query else '?'}{query}"


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


class AuthorizationFlow:
    def __init__(
        self,
        *,
        issuer: str,
        agents: ClientReader,
        users: UserDirectoryReader,
        sign_ins: SignInStore,
        sessions: SessionStore,
        consents: ConsentStore,
        codes: CodeStore,
        transaction: Transaction,
        upstream: Upstream,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._issuer = issuer
        self._agents = agents
        self._users = users
        self._sign_ins = sign_ins
        self._sessions = sessions
        self._consents = consents
        self._codes = codes
        self._transaction = transaction
        self._upstream = upstream
        self._audit = audit
        self._clock = clock

    # --- GET /authorize ---------------------------------------------------------------------------------

    def authorize(
        self, params: Mapping[str, str | None], repeated: frozenset[str], cookie: str | None, meta: Meta
    ) -> FlowOutcome:
        now = int(self._clock.now())
        client_id = params.get("client_id") or ""
        agent = self._agents.get_client(client_id) if _VALID_NAME.match(client_id) else None
        record = _Record(
            "authorize.request", meta, now, client_id if agent else unverified(client_id or None)
        )
        try:
            request = validate_authorization_request(params, agent, repeated)
        except AuthorizePageError as error:
            return self._write(record.deny(error.reason), _error_page(error.message))
        except AuthorizeRedirectError as error:
            return self._write(record.deny(error.reason), self._error_redirect(error))
        record = record.about(request)
        session = None
        if cookie and request.prompt != "login":
            session = self._sessions.get_session(session_hash(cookie), now)
        if session is None:
            if request.prompt == "none":
                return self._write(record.deny("login_required"), self._refuse(request, "login_required"))
            browser = secrets.token_urlsafe(32)
            sign_in = replace(self._new_sign_in(request, now), browser_hash=opaque.digest(browser))
            return self._write(record.allow("sign_in_required"), self._go_upstream(sign_in, browser))
        sign_in = replace(self._new_sign_in(request, now), user=session.user, groups=session.groups)
        self._sign_ins.put_sign_in(sign_in)  # what consent (or a remembered consent) decides on
        return self._after_sign_in(
            sign_in, request.agent, record.signed_in(session.user), prompt=request.prompt
        )

    def _go_upstream(self, sign_in: SignIn, browser: str) -> Redirect:
        """Store the sign-in and send the browser to the provider, with the cookie that binds the two."""
        self._sign_ins.put_sign_in(sign_in)
        location = self._upstream.authorization_url(
            state=sign_in.sign_in_id, nonce=sign_in.upstream_nonce, code_verifier=sign_in.upstream_verifier
        )
        return Redirect(location, sign_in_cookie=SignInCookie(sign_in.sign_in_id, browser))

    def _new_sign_in(self, request: ValidatedRequest, now: int) -> SignIn:
        return SignIn(
            sign_in_id=secrets.token_urlsafe(24),
            client_id=request.agent.client_id,
            redirect_uri=request.redirect_uri,
            scopes=request.scopes,
            audience=request.audience,
            code_challenge=request.code_challenge,
            created_at=now,
            expires_at=now + SIGN_IN_SECONDS,
            state=request.state,
            nonce=request.nonce,
            prompt=request.prompt,
            upstream_nonce=secrets.token_urlsafe(24),
            upstream_verifier=secrets.token_urlsafe(48),
        )

    # --- GET /authorize/approver -------------------------------------------------------------------------

    def approver_sign_in(self, return_to: str | None, meta: Meta) -> FlowOutcome:
        """An approver whose group requires sign-in comes from an approval page: sign in upstream, then
        back to `return_to`. The approval page (not this flow) checks the signed-in email against the
        link, so all this needs is that the target is one of our approval pages."""
        now = int(self._clock.now())
        record = _Record("authorize.approver_sign_in", meta, now, None, grant_type=None)
        if return_to is None or not APPROVAL_PAGE.fullmatch(return_to):
            return self._write(record.deny("invalid_return_target"), _error_page(NOT_AN_APPROVAL_LINK))
        browser = secrets.token_urlsafe(32)
        sign_in = SignIn(
            sign_in_id=secrets.token_urlsafe(24),
            client_id="",
            redirect_uri="",
            scopes=(),
            audience="",
            code_challenge="",
            created_at=now,
            expires_at=now + SIGN_IN_SECONDS,
            upstream_nonce=secrets.token_urlsafe(24),
            upstream_verifier=secrets.token_urlsafe(48),
            return_to=return_to,
            browser_hash=opaque.digest(browser),
        )
        return self._write(record.allow("sign_in_required"), self._go_upstream(sign_in, browser))

    def _approver_signed_in(
        self, sign_in: SignIn, params: Mapping[str, str | None], record: _Record
    ) -> FlowOutcome:
        """The callback of an approver's sign-in: a session, and back to the approval page."""
        now = record.at
        target = sign_in.return_to or ""
        if not APPROVAL_PAGE.fullmatch(target):
            return self._write(record.deny("invalid_return_target"), _error_page(NOT_AN_APPROVAL_LINK))
        if params.get("error"):
            reason = _provider_error(params.get("error"))
            return self._write(record.deny(reason), _error_page(SIGN_IN_FAILED))
        try:
            identity = self._identity(sign_in, params)
        except UpstreamRejected as failure:
            return self._write(record.deny(f"upstream:{failure.reason}"), _error_page(SIGN_IN_FAILED))
        user = identity.email.lower()
        record = record.signed_in(user)
        cookie = self._open_session(sign_in, user, identity.groups, now)
        if cookie is None:
            return self._write(record.deny("sign_in_already_completed"), _error_page(SIGN_IN_AGAIN))
        location = self._issuer + target
        return self._write(record.allow("approver_signed_in"), Redirect(location, new_session=cookie))

    def _identity(self, sign_in: SignIn, params: Mapping[str, str | None]) -> UpstreamIdentity:
        """The provider's answer checked (state, code) and redeemed with the sign-in's nonce and PKCE
        verifier; UpstreamRejected otherwise."""
        response = self._upstream.callback({k: v for k, v in params.items() if v is not None})
        return self._upstream.complete(
            response.code, nonce=sign_in.upstream_nonce, code_verifier=sign_in.upstream_verifier
        )

    def _open_session(self, sign_in: SignIn, user: str, groups: tuple[str, ...], now: int) -> str | None:
        """Completes the sign-in (once: a conditional write) and starts the user's session; its cookie
        value, or None when the sign-in was completed already."""
        if not self._sign_ins.complete_sign_in(sign_in.sign_in_id, user, groups, now):
            return None
        cookie = secrets.token_urlsafe(32)
        self._sessions.put_session(
            UserSession(session_hash(cookie), user, groups, now, now + SESSION_SECONDS)
        )
        return cookie

    # --- GET /authorize/callback ------------------------------------------------------------------------

    def callback(
        self, params: Mapping[str, str | None], meta: Meta, browser: str | None = None
    ) -> FlowOutcome:
        """`browser`: the value of the sign-in's cookie (stores.sign_in_cookie_name of `state`), if the
        browser sent one. Once the sign-in is found, every outcome clears that cookie."""
        now = int(self._clock.now())
        record = _Record("authorize.sign_in", meta, now, None)
        state = params.get("state") or ""
        sign_in = self._sign_ins.get_sign_in(state, now) if _SIGN_IN_ID.match(state) else None
        if sign_in is None or sign_in.user is not None:
            # Unknown, expired or already used: a forged or replayed provider response.
            return self._write(record.deny("unknown_sign_in_state"), _error_page(SIGN_IN_AGAIN))
        if sign_in.return_to is not None:
            record = _Record("authorize.approver_sign_in", meta, now, None, grant_type=None)
        else:
            record = record.for_sign_in(sign_in)
        return _clearing(self._callback(sign_in, params, browser, record), sign_in.sign_in_id)

    def _callback(
        self, sign_in: SignIn, params: Mapping[str, str | None], browser: str | None, record: _Record
    ) -> FlowOutcome:
        now = record.at
        if not _same_browser(sign_in, browser):
            return self._end_sign_in(sign_in, record.deny("sign_in_not_from_this_browser"))
        if sign_in.return_to is not None:
            return self._approver_signed_in(sign_in, params, record)
        agent = self._agents.get_client(sign_in.client_id)
        if agent is None or agent.delegation is None:
            return self._write(record.deny("client_removed"), _error_page(SIGN_IN_AGAIN))
        if agent.disabled:
            return self._write(record.deny("agent_disabled"), _error_page(AGENT_DISABLED))
        if params.get("error"):
            # The user cancelled at the provider, or it refused: the client learns access_denied.
            reason = _provider_error(params.get("error"))
            location = redirect_to_client(
                sign_in.redirect_uri, self._issuer, error="access_denied", state=sign_in.state
            )
            return self._write(record.deny(reason), Redirect(location))
        try:
            identity = self._identity(sign_in, params)
        except UpstreamRejected as failure:
            return self._write(record.deny(f"upstream:{failure.reason}"), _error_page(SIGN_IN_FAILED))
        user = identity.email.lower()
        cookie = self._open_session(sign_in, user, identity.groups, now)
        if cookie is None:
            return self._write(record.deny("sign_in_already_completed"), _error_page(SIGN_IN_AGAIN))
        signed_in = replace(sign_in, user=user, groups=identity.groups)
        outcome = self._after_sign_in(signed_in, agent, record.signed_in(user), prompt=sign_in.prompt)
        if isinstance(outcome.result, Redirect):
            return replace(outcome, result=replace(outcome.result, new_session=cookie))
        return outcome

    def _end_sign_in(self, sign_in: SignIn, record: _Record) -> FlowOutcome:
        """A callback that must not complete: the sign-in is deleted with its record (one transaction),
        so the same callback URL fails in the browser that started it too."""
        denied = record.build()
        if not self._transaction.commit(
            [self._sign_ins.consume_sign_in(sign_in.sign_in_id, record.at), self._audit.entry(denied)]
        ):
            return self._write(record, _error_page(SIGN_IN_AGAIN))  # ended meanwhile: still refused
        return FlowOutcome(_error_page(SIGN_IN_AGAIN), denied, committed=True)

    # --- after sign-in: narrow to the user's roles, then consent ------------------------------------------

    def _after_sign_in(
        self, sign_in: SignIn, agent: Agent, record: _Record, *, prompt: str | None
    ) -> FlowOutcome:
        assert sign_in.user is not None
        narrowed = self._narrow_to_user(sign_in)
        if not [s for s in narrowed.scopes if s not in OIDC_SCOPES]:
            return self._write(record.deny("user_holds_no_requested_scope"), self._refuse_sign_in(narrowed))
        remembered = self._consents.get_consent(sign_in.user, agent.client_id)
        mode = agent.delegation.consent if agent.delegation else "every_time"
        if (
            prompt != "consent"
            and mode == "remember"
            and remembered is not None
            and not remembered.revoked
            and remembered.audience == narrowed.audience
            and set(narrowed.scopes) <= set(remembered.scopes)
        ):
            return self._issue_code(narrowed, agent, record.consented("remembered"), remember=False)
        if prompt == "none":
            return self._write(
                record.deny("consent_required"), self._refuse_sign_in(narrowed, "consent_required")
            )
        location = f"{self._issuer}/authorize/consent?{urlencode({'request': narrowed.sign_in_id})}"
        return self._write(record.allow("consent_required"), Redirect(location))

    def _narrow_to_user(self, sign_in: SignIn) -> SignIn:
        assert sign_in.user is not None
        allowed = self._users.get_users().scopes_for(sign_in.user, sign_in.groups) | OIDC_SCOPES
        return replace(sign_in, scopes=tuple(s for s in sign_in.scopes if s in allowed))

    # --- the consent page ---------------------------------------------------------------------------------

    def consent_page(self, sign_in_id: str, cookie: str | None, meta: Meta) -> FlowOutcome:
        found = self._consenting(sign_in_id, cookie, meta)
        if isinstance(found, FlowOutcome):
            return found
        sign_in, agent, record = found
        descriptions = agent.descriptions
        page = ConsentPage(
            sign_in_id=sign_in.sign_in_id,
            agent=agent,
            user=str(sign_in.user),
            redirect_host=urlsplit(sign_in.redirect_uri).netloc,
            redirect_origin=_origin(sign_in.redirect_uri),
            audience=sign_in.audience,
            scopes=tuple((s, descriptions.get(s) or _OIDC_DESCRIPTIONS.get(s, "")) for s in sign_in.scopes),
        )
        return self._write(record.allow("consent_shown"), page)

    def decide(self, sign_in_id: str, cookie: str | None, decision: str, meta: Meta) -> FlowOutcome:
        found = self._consenting(sign_in_id, cookie, meta)
        if isinstance(found, FlowOutcome):
            return found
        sign_in, agent, record = found
        now = record.at
        if decision != "allow":
            location = redirect_to_client(
                sign_in.redirect_uri, self._issuer, error="access_denied", state=sign_in.state
            )
            denied = record.deny("user_denied").build()
            writes = [self._sign_ins.consume_sign_in(sign_in.sign_in_id, now), self._audit.entry(denied)]
            if not self._transaction.commit(writes):
                return self._write(record.deny("sign_in_already_decided"), _error_page(SIGN_IN_AGAIN))
            return FlowOutcome(Redirect(location), denied, committed=True)
        if not [s for s in sign_in.scopes if s not in OIDC_SCOPES]:
            return self._write(record.deny("user_holds_no_requested_scope"), self._refuse_sign_in(sign_in))
        mode = agent.delegation.consent if agent.delegation else "every_time"
        return self._issue_code(sign_in, agent, record.consented("user_allowed"), remember=mode == "remember")

    def _consenting(
        self, sign_in_id: str, cookie: str | None, meta: Meta
    ) -> tuple[SignIn, Agent, _Record] | FlowOutcome:
        """The sign-in a consent page shows or decides, narrowed to the user's roles as they are now
        (roles taken away since the sign-in are not granted), or the refusal."""
        now = int(self._clock.now())
        record = _Record("authorize.consent", meta, now, None)
        found = self._signed_in(sign_in_id, cookie, now)
        if isinstance(found, str):
            return self._write(record.deny(found), _error_page(SIGN_IN_AGAIN))
        sign_in = self._narrow_to_user(found[0])
        return sign_in, found[1], record.for_sign_in(sign_in)

    def _signed_in(self, sign_in_id: str, cookie: str | None, now: int) -> tuple[SignIn, Agent] | str:
        """The sign-in behind a consent page, only for the browser whose session signed it in."""
        sign_in = self._sign_ins.get_sign_in(sign_in_id, now) if _SIGN_IN_ID.match(sign_in_id or "") else None
        if sign_in is None or sign_in.user is None or sign_in.return_to is not None:
            return "unknown_sign_in"
        session = self._sessions.get_session(session_hash(cookie), now) if cookie else None
        if session is None or session.user != sign_in.user:
            return "session_mismatch"
        agent = self._agents.get_client(sign_in.client_id)
        if agent is None or agent.delegation is None:
            return "client_removed"
        if agent.disabled:
            return "agent_disabled"
        return sign_in, agent

    def _issue_code(self, sign_in: SignIn, agent: Agent, record: _Record, *, remember: bool) -> FlowOutcome:
        now = int(self._clock.now())
        assert sign_in.user is not None
        code = opaque.new_code()
        stored = AuthorizationCode(
            code_hash=opaque.digest(code),
            client_id=agent.client_id,
            redirect_uri=sign_in.redirect_uri,
            code_challenge=sign_in.code_challenge,
            audience=sign_in.audience,
            scopes=sign_in.scopes,
            user=sign_in.user,
            created_at=now,
            expires_at=now + CODE_SECONDS,
            family_id=opaque.new_family_id(),
            nonce=sign_in.nonce,
            groups=sign_in.groups,
        )
        issued = record.with_scope(sign_in.scopes).build()
        writes = [
            self._sign_ins.consume_sign_in(sign_in.sign_in_id, now),
            self._codes.put_code(stored),
            self._audit.entry(issued),
        ]
        if remember:
            consent = Consent(sign_in.user, agent.client_id, sign_in.audience, sign_in.scopes, now)
            writes.append(self._consents.put_consent(consent))
        if not self._transaction.commit(writes):
            return self._write(record.deny("sign_in_already_decided"), _error_page(SIGN_IN_AGAIN))
        location = redirect_to_client(sign_in.redirect_uri, self._issuer, code=code, state=sign_in.state)
        return FlowOutcome(Redirect(location), issued, committed=True)

    # --- refusals -------------------------------------------------------------------------------------------

    def _error_redirect(self, error: AuthorizeRedirectError) -> Redirect:
        return Redirect(
            redirect_to_client(error.redirect_uri, self._issuer, error=error.error, state=error.state)
        )

    def _refuse(self, request: ValidatedRequest, error: str) -> Redirect:
        return Redirect(
            redirect_to_client(request.redirect_uri, self._issuer, error=error, state=request.state)
        )

    def _refuse_sign_in(self, sign_in: SignIn, error: str = "access_denied") -> Redirect:
        return Redirect(
            redirect_to_client(sign_in.redirect_uri, self._issuer, error=error, state=sign_in.state)
        )

    @staticmethod
    def _write(record: _Record, result: Result) -> FlowOutcome:
        """The outcome and the record the caller writes (nothing was changed in a transaction)."""
        return FlowOutcome(result, record.build())


@dataclass(frozen=True)
class Meta:
    """Where a browser request came from, for its audit record."""

    http_request_id: str
    source_ip: str


@dataclass(frozen=True)
class _Record:
    action: str
    meta: Meta
    at: int
    client_id: str | None
    user: str | None = None
    scope: str | None = None
    audience: str | None = None
    decision: str = "deny"
    reason: str | None = None
    grant_type: str | None = "authorization_code"

    def about(self, request: ValidatedRequest) -> _Record:
        return replace(self, scope=" ".join(request.scopes), audience=request.audience)

    def for_sign_in(self, sign_in: SignIn) -> _Record:
        return replace(
            self,
            client_id=sign_in.client_id,
            user=sign_in.user,
            scope=" ".join(sign_in.scopes),
            audience=sign_in.audience,
        )

    def signed_in(self, user: str) -> _Record:
        return replace(self, user=user)

    def consented(self, how: str) -> _Record:
        return replace(self, decision="allow", reason=how)

    def with_scope(self, scopes: tuple[str, ...]) -> _Record:
        return replace(self, scope=" ".join(scopes))

    def allow(self, reason: str) -> _Record:
        return replace(self, decision="allow", reason=reason)

    def deny(self, reason: str) -> _Record:
        return replace(self, decision="deny", reason=reason)

    def build(self) -> AuditRecord:
        return AuditRecord(
            action=self.action,
            decision=self.decision,
            at=self.at,
            reason=self.reason,
            client_id=self.client_id,
            user=self.user,
            grant_type=self.grant_type,
            scope_granted=self.scope if self.decision == "allow" else None,
            scope_requested=self.scope if self.decision != "allow" else None,
            audience=self.audience,
            http_request_id=self.meta.http_request_id,
            source_ip=self.meta.source_ip,
        )


SIGN_IN_AGAIN = "This sign-in has ended or was not started here. Go back to the application and try again."
SIGN_IN_FAILED = "The sign-in could not be confirmed. Go back to the application and try again."
NOT_AN_APPROVAL_LINK = "This sign-in was not started from an approval link. Open the link from your email."
_OIDC_DESCRIPTIONS = {"openid": "Know who you are", "offline_access": "Keep access while you are away"}


def _error_page(message: str) -> ErrorPage:
    return ErrorPage(400, "Sign-in cannot continue", message)


def _same_browser(sign_in: SignIn, browser: str | None) -> bool:
    """The callback came from the browser that started the sign-in: it sent the sign-in's cookie, whose
    hash the sign-in keeps (compared in constant time). A sign-in without one never matches."""
    if not browser or not sign_in.browser_hash:
        return False
    return hmac.compare_digest(opaque.digest(browser), sign_in.browser_hash)


def _clearing(outcome: FlowOutcome, sign_in_id: str) -> FlowOutcome:
    """The outcome of a callback, clearing the sign-in's cookie: used, whatever happened."""
    result = outcome.result
    if isinstance(result, Redirect | ErrorPage):
        return replace(outcome, result=replace(result, sign_in_cookie=SignInCookie(sign_in_id)))
    return outcome


PROVIDER_ERRORS = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        # OpenID Connect Core §3.1.2.6
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)


def _provider_error(error: str | None) -> str:
    """The audit reason for an error at the callback: anyone who starts a sign-in can type any `error`
    into its callback URL, so only the codes RFC 6749 §4.1.2.1 and OpenID Connect define are kept as
    sent; anything else is a fingerprint."""
    kept = error if error in PROVIDER_ERRORS else unverified(error)
    return f"provider_error:{kept}"
