"""The shell every browser page goes through: approval today; sign-in and consent next.

One shape and one set of protections for pages people open, as web/client_endpoint.py is for the
endpoints programs call:

- GET and HEAD only call the page's `view`, which changes nothing (mail scanners and link previews fetch
  pages). HEAD gets the same status and headers, and no body.
- POST is accepted only from our origin, as the page's own form (parsed strictly, web/forms.py), and
  carrying the page's double-submit CSRF token (see `CsrfTokens`). Only then is `submit` called.
- Any other method is a 405 with `Allow`.
- Every response carries the page headers (web/html.py: no-store, no-referrer, a CSP that forbids
  framing and scripts).
- Exactly one audit record per request, written before the response: the page use case returns the
  record of what it did (or says it was written in its transaction); every refusal here, and every
  failure, is recorded by the shell itself. If that record cannot be written, the resolver's 503
  answers instead (fail closed).

Refusals are typed errors, rendered as error pages by the resolver (routes are PAGE routes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock
from agent_auth.errors import (
    AccessDenied,
    AgentAuthError,
    DependencyFailure,
    InvalidRequest,
    MethodNotAllowed,
    TemporarilyUnavailable,
)
from agent_auth.oauth.params import Form
from agent_auth.ports import AuditLog
from agent_auth.web.forms import parse_form
from agent_auth.web.html import PAGE_HEADERS, PageView, page_headers, render
from agent_auth.web.request import Request, Response

S = TypeVar("S")

CSRF_FIELD = "csrf"
VIEW_METHODS = ("GET", "HEAD")
ALLOWED = ("GET", "HEAD", "POST")

NOT_THE_FORM = "This was not sent from the page it belongs to. Open the page again and use it there."
FORGED = "This form did not come from its page, or the page is out of date. Open it again and retry."
_INTERNAL = AgentAuthError("Internal error", reason="internal_error")


@dataclass(frozen=True)
class CsrfBinding:
    """What a page's CSRF token is bound to: a MAC `key` and the `context` it is computed over. The
    page use case chooses both (jit/links.csrf_binding says why approval uses the link's signature)."""

    key: bytes
    context: bytes


@dataclass(frozen=True)
class PageOutcome:
    status: int
    view: PageView
    audit: AuditRecord
    audited: bool = False
    """True when `audit` was already written, atomically with the change it records."""
    csrf: CsrfBinding | None = None
    """Set when the page shows its form: the shell issues a token bound to this."""
    redirect: str | None = None
    """Answer 302 to this URL instead of rendering `view` (authorization responses, sign-in)."""
    set_cookie: str | None = None
    """A further cookie to set (the sign-in session), as a complete Set-Cookie value."""
    more_cookies: tuple[str, ...] = ()
    """Cookies to set besides `set_cookie` (a sign-in's own cookie, cleared as the session is set)."""
    form_targets: tuple[str, ...] = ()
    """Origins the page's form may end up at: browsers apply CSP form-action to the redirect that
    follows a POST (consent redirects to the client)."""


class PageUseCase(Protocol[S]):
    """A page behind the shell. `S` is what its form carries once read (e.g. a link and a decision)."""

    view_action: str
    submit_action: str

    def view(self, request: Request) -> PageOutcome:
        """Must not change state: GET and HEAD land here."""
        ...

    def read(self, request: Request, form: Form) -> S | None:
        """The submission this page's form carries; None when the form is not this page's."""
        ...

    def binding(self, submission: S) -> CsrfBinding:
        """What the submission's CSRF token must have been issued for."""
        ...

    def submit(self, request: Request, submission: S) -> PageOutcome: ...

    def refusal_details(self, request: Request) -> dict[str, Any]:
        """What a refusal record may name about the request (ids only; nothing unproven)."""
        ...


@dataclass(frozen=True)
class CookiePolicy:
    """The CSRF cookie. `__Host-` (Secure, Path=/, no Domain) needs https; a plain-http loopback
    issuer (the development server) uses the plain name. SameSite=Strict for approval pages; consent,
    reached by a redirect from another site, will need Lax for its sign-in cookie."""

    name: str = "agent-auth-csrf"
    same_site: Literal["Strict", "Lax"] = "Strict"

    def cookie_name(self, secure: bool) -> str:
        return f"__Host-{self.name}" if secure else self.name

    def set_cookie(self, value: str, secure: bool) -> str:
        flags = f"; Path=/; HttpOnly; SameSite={self.same_site}" + ("; Secure" if secure else "")
        return f"{self.cookie_name(secure)}={value}{flags}"


_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")


class CsrfTokens:
    """Double submit, bound: the page sets the same token in a cookie and in its form. The token is a
    random nonce and a MAC over it and the page's binding context, keyed by the binding's key.

    A POST must carry both, equal (compared in constant time), with a MAC that matches what the
    submission is about. A pair an attacker picks (cookie tossing, or a form built without ever
    rendering the page) fails without the key; a token issued for another page fails too.
    """

    LABEL = b"agent-auth page csrf v1\n"

    @staticmethod
    def nonce() -> str:
        return secrets.token_urlsafe(24)

    @classmethod
    def _mac(cls, nonce: str, binding: CsrfBinding) -> str:
        message = cls.LABEL + nonce.encode() + b"\n" + binding.context
        return hmac.new(binding.key, message, hashlib.sha256).hexdigest()

    @classmethod
    def token(cls, nonce: str, binding: CsrfBinding) -> str:
        return f"{nonce}.{cls._mac(nonce, binding)}"

    @classmethod
    def verify(cls, cookie: str | None, field: str | None, binding: CsrfBinding) -> bool:
        sent = (field or "").encode("utf-8", "replace")
        nonce = sent.partition(b".")[0].decode("ascii", "replace")
        if not cookie or not _NONCE.fullmatch(nonce):
            return False
        expected = cls.token(nonce, binding).encode()
        same = hmac.compare_digest(sent, cookie.encode("utf-8", "replace"))
        return hmac.compare_digest(sent, expected) and same


class BrowserEndpoint(Generic[S]):
    def __init__(
        self,
        *,
        page: PageUseCase[S],
        issuer: str,
        audit: AuditLog,
        clock: Clock,
        cookie: CookiePolicy | None = None,
    ) -> None:
        self._page = page
        self._audit = audit
        self._clock = clock
        self._cookie = cookie or CookiePolicy()
        url = urlsplit(issuer)
        self._origin = f"{url.scheme}://{url.netloc}"
        self._secure = url.scheme == "https"

    def handle(self, request: Request) -> Response:
        action = self._page.view_action if request.method in VIEW_METHODS else self._page.submit_action
        try:
            try:
                outcome = self._perform(request)
            except DependencyFailure as failure:
                raise TemporarilyUnavailable(
                    "Service temporarily unavailable", reason="dependency_failure"
                ) from failure
        except AgentAuthError as error:
            self._audit.write(self._refusal(request, action, error))
            raise
        except Exception:
            # A bug, not a decision: still one record (nothing was decided), then the resolver's 500.
            self._audit.write(self._refusal(request, action, _INTERNAL))
            raise
        if not outcome.audited:
            self._audit.write(outcome.audit)
        return self._respond(request, outcome)

    def _perform(self, request: Request) -> PageOutcome:
        if request.method in VIEW_METHODS:
            return self._page.view(request)
        if request.method != "POST":
            raise MethodNotAllowed(ALLOWED)
        if not self._same_origin(request):
            raise AccessDenied(FORGED, reason="csrf")
        try:
            form = parse_form(request)
        except InvalidRequest as error:
            raise AccessDenied(NOT_THE_FORM, reason=f"not_the_form:{error.reason}") from error
        submission = self._page.read(request, form)
        if submission is None:
            raise AccessDenied(NOT_THE_FORM, reason="not_the_form")
        cookie = request.cookie(self._cookie.cookie_name(self._secure))
        if not CsrfTokens.verify(cookie, form.get(CSRF_FIELD), self._page.binding(submission)):
            raise AccessDenied(FORGED, reason="csrf")
        return self._page.submit(request, submission)

    def _same_origin(self, request: Request) -> bool:
        """A foreign Origin is refused. `Origin: null` is accepted: browsers send it for a form posted
        from a page with Referrer-Policy: no-referrer (Fetch standard), and ours are such pages; the
        bound CSRF token is what proves the page was ours. Fetch metadata, when sent, must say
        same-origin too (a sandboxed frame elsewhere also sends `null`, but not `same-origin`)."""
        origin = request.header("origin")
        site = request.header("sec-fetch-site")
        return origin in (None, "null", self._origin) and site in (None, "same-origin")

    def _respond(self, request: Request, outcome: PageOutcome) -> Response:
        headers = (
            page_headers(form_targets=outcome.form_targets) if outcome.form_targets else dict(PAGE_HEADERS)
        )
        cookies = (*((outcome.set_cookie,) if outcome.set_cookie is not None else ()), *outcome.more_cookies)
        view = outcome.view
        if outcome.redirect is None and outcome.csrf is not None and view.form is not None:
            token = CsrfTokens.token(CsrfTokens.nonce(), outcome.csrf)
            cookies = (self._cookie.set_cookie(token, self._secure),)  # a page with a form: only its own
            field = (CSRF_FIELD, token)
            view = replace(view, form=replace(view.form, hidden=(*view.form.hidden, field)))
        if cookies:
            headers["Set-Cookie"] = cookies[0]
        several = cookies if len(cookies) > 1 else ()
        if outcome.redirect is not None:
            location = {"Location": outcome.redirect}
            return Response(status=302, body="", headers={**headers, **location}, cookies=several)
        body = "" if request.method == "HEAD" else render(view)
        return Response(status=outcome.status, body=body, headers=headers, cookies=several)

    def _refusal(self, request: Request, action: str, error: AgentAuthError) -> AuditRecord:
        return AuditRecord(
            action=action,
            decision="deny",
            at=self._clock.now(),
            reason=error.reason,
            http_request_id=request.http_request_id,
            source_ip=request.source_ip,
            details={**self._page.refusal_details(request), "status": error.status},
        )
