"""GET /authorize, GET /authorize/callback, GET and POST /authorize/consent: delegated access; and
GET /authorize/approver: an approver's sign-in, for approver groups with `sign_in: true`.

Glue only. The browser-endpoint shell (web/browser_endpoint.py) owns methods, origin, the bound CSRF
token, the page headers and the one audit record; the flow (oauth/authorize/flow.py) decides; this
module turns its outcomes into pages, redirects and the session cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.audit import printable
from agent_auth.clock import default_clock
from agent_auth.config import Settings
from agent_auth.jit.links import LINK_FIELDS, approval_path, parse_link
from agent_auth.oauth.authorize.flow import (
    SESSION_SECONDS,
    SIGN_IN_SECONDS,
    AuthorizationFlow,
    ConsentPage,
    ErrorPage,
    FlowOutcome,
    Meta,
    Redirect,
    SignInCookie,
)
from agent_auth.oauth.authorize.stores import SESSION_COOKIE, sign_in_cookie_name
from agent_auth.oauth.params import Form
from agent_auth.web.browser_endpoint import BrowserEndpoint, CookiePolicy, CsrfBinding, PageOutcome
from agent_auth.web.function import Container
from agent_auth.web.html import Button, PageForm, PageView
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ALL_METHODS, Resolver, RouteKind

app = Resolver()
SESSION = CookiePolicy(SESSION_COOKIE, same_site="Lax")
"""Lax: the user arrives at /authorize by a top-level navigation from the agent's site."""
CONSENT_CSRF = CookiePolicy("agent-auth-consent-csrf", same_site="Strict")


def sign_in_policy(sign_in_id: str) -> CookiePolicy:
    """A sign-in's own cookie, with the session's rules (`__Host-`, Secure off loopback, HttpOnly,
    Path=/). Lax, as the session: the provider sends the browser back by a top-level navigation from
    its site, and Lax cookies go with those (a Strict one would not reach the callback)."""
    return CookiePolicy(sign_in_cookie_name(sign_in_id), same_site="Lax")


AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "nonce",
    "prompt",
)
CHOICES = (Button("Allow", "decision", "allow", "primary"), Button("Deny", "decision", "deny", "secondary"))


def _meta(request: Request) -> Meta:
    return Meta(request.http_request_id, request.source_ip)


class _Pages:
    """Shared by the three pages: the flow, and how its outcomes become responses."""

    def __init__(self, flow: AuthorizationFlow, secure: bool) -> None:
        self.flow = flow
        self.secure = secure

    def session(self, request: Request) -> str | None:
        return request.cookie(SESSION.cookie_name(self.secure))

    def sign_in_cookie(self, request: Request, state: str | None) -> str | None:
        """The cookie of the sign-in named by the callback's `state`, if this browser holds it."""
        return request.cookie(sign_in_policy(state).cookie_name(self.secure)) if state else None

    def respond(self, outcome: FlowOutcome, csrf: CsrfBinding | None = None) -> PageOutcome:
        result = outcome.result
        if isinstance(result, Redirect):
            cookies = [self._sign_in_cookie(result.sign_in_cookie)] if result.sign_in_cookie else []
            if result.new_session is not None:
                session = SESSION.set_cookie(result.new_session, self.secure) + f"; Max-Age={SESSION_SECONDS}"
                cookies.insert(0, session)
            return PageOutcome(
                302,
                _EMPTY,
                outcome.audit,
                audited=outcome.committed,
                redirect=result.location,
                set_cookie=cookies[0] if cookies else None,
                more_cookies=tuple(cookies[1:]),
            )
        if isinstance(result, ErrorPage):
            view = PageView(result.title, result.message)
            cleared = self._sign_in_cookie(result.sign_in_cookie) if result.sign_in_cookie else None
            return PageOutcome(
                result.status, view, outcome.audit, audited=outcome.committed, set_cookie=cleared
            )
        return PageOutcome(
            200,
            consent_view(result),
            outcome.audit,
            audited=outcome.committed,
            csrf=csrf,
            form_targets=(result.redirect_origin,),
        )

    def _sign_in_cookie(self, cookie: SignInCookie) -> str:
        """Set for the sign-in's lifetime when it starts; expired at once (cleared) by its callback."""
        policy = sign_in_policy(cookie.sign_in_id)
        if cookie.value is None:
            return policy.set_cookie("", self.secure) + "; Max-Age=0"
        return policy.set_cookie(cookie.value, self.secure) + f"; Max-Age={SIGN_IN_SECONDS}"


_EMPTY = PageView("Redirecting", "")


def consent_view(page: ConsentPage) -> PageView:
    """product.md: names the agent, its owner, the user, the redirect URI's host, the audience and every
    scope with its description; Allow and Deny."""
    scopes = "; ".join(f"{scope} ({description or 'no description'})" for scope, description in page.scopes)
    facts = (
        ("Agent", page.agent.client_id),
        ("Owner", page.agent.owner),
        ("Signed in as", page.user),
        ("Returns to", page.redirect_host),
        ("Audience", page.audience),
        ("Scopes", scopes),
    )
    message = f"{page.agent.client_id} asks to act for you with the access below."
    return PageView(
        "Allow access?", message, facts=facts, form=PageForm(CHOICES, (("request", page.sign_in_id),))
    )


class _ViewOnly:
    """A page that is only ever fetched (GET): a POST is not its form."""

    view_action: str
    submit_action: str

    def __init__(self, pages: _Pages) -> None:
        self._pages = pages

    def read(self, request: Request, form: Form) -> None:
        return None

    def binding(self, submission: None) -> CsrfBinding:
        raise AssertionError("a view-only page has no form")

    def submit(self, request: Request, submission: None) -> PageOutcome:
        raise AssertionError("a view-only page has no form")

    def refusal_details(self, request: Request) -> dict[str, Any]:
        return {}


class AuthorizePage(_ViewOnly):
    """GET /authorize (RFC 6749 §4.1.1)."""

    view_action = submit_action = "authorize.request"

    def view(self, request: Request) -> PageOutcome:
        repeated = frozenset(name for name in AUTHORIZE_PARAMS if len(request.query.get(name) or ()) > 1)
        params = {name: request.query_param(name) for name in AUTHORIZE_PARAMS}
        outcome = self._pages.flow.authorize(params, repeated, self._pages.session(request), _meta(request))
        return self._pages.respond(outcome)


class CallbackPage(_ViewOnly):
    """GET /authorize/callback: the upstream provider's authorization response."""

    view_action = submit_action = "authorize.sign_in"

    def view(self, request: Request) -> PageOutcome:
        params = {name: request.query_param(name) for name in ("code", "state", "error", "iss")}
        browser = self._pages.sign_in_cookie(request, params["state"])
        return self._pages.respond(self._pages.flow.callback(params, _meta(request), browser))


class ApproverSignInPage(_ViewOnly):
    """GET /authorize/approver?request=ID&approver=...&d=...&expires=...&sig=...: an approval page sent
    its approver here (the group requires sign-in). The return target is rebuilt from the parsed link,
    never taken as sent, so it can only be one of our approval pages; the link's MAC is verified there."""

    view_action = submit_action = "authorize.approver_sign_in"

    def view(self, request: Request) -> PageOutcome:
        link = parse_link(
            request.query_param("request") or "", {n: request.query_param(n) for n in LINK_FIELDS}
        )
        return_to = approval_path(link) if link is not None else None
        return self._pages.respond(self._pages.flow.approver_sign_in(return_to, _meta(request)))


@dataclass(frozen=True)
class ConsentDecision:
    sign_in_id: str
    decision: str
    session: str | None = field(repr=False)


class ConsentForm:
    """GET /authorize/consent: the page; POST: Allow or Deny, bound to the signed-in session."""

    view_action = submit_action = "authorize.consent"

    def __init__(self, pages: _Pages) -> None:
        self._pages = pages

    def view(self, request: Request) -> PageOutcome:
        sign_in_id = request.query_param("request") or ""
        session = self._pages.session(request)
        outcome = self._pages.flow.consent_page(sign_in_id, session, _meta(request))
        return self._pages.respond(outcome, csrf=consent_binding(session, sign_in_id))

    def read(self, request: Request, form: Form) -> ConsentDecision | None:
        sign_in_id, decision = form.get("request"), form.get("decision")
        if not sign_in_id or decision not in ("allow", "deny"):
            return None
        return ConsentDecision(sign_in_id, str(decision), self._pages.session(request))

    def binding(self, submission: ConsentDecision) -> CsrfBinding:
        return consent_binding(submission.session, submission.sign_in_id)

    def submit(self, request: Request, submission: ConsentDecision) -> PageOutcome:
        flow = self._pages.flow
        return self._pages.respond(
            flow.decide(submission.sign_in_id, submission.session, submission.decision, _meta(request))
        )

    def refusal_details(self, request: Request) -> dict[str, Any]:
        return {"sign_in": printable(request.query_param("request"), 64)}


def consent_binding(session: str | None, sign_in_id: str) -> CsrfBinding:
    """The consent form's token is keyed by the session cookie (a secret only this browser holds) over
    the sign-in it decides: a form built elsewhere, or for another sign-in, fails. Without a session no
    token can match (a fresh random key)."""
    key = session.encode() if session else secrets.token_bytes(32)
    return CsrfBinding(key, b"consent\n" + sign_in_id.encode())


def endpoints(settings: Settings, clients: AwsClients) -> dict[str, BrowserEndpoint[Any]]:
    pages = _Pages(wiring.authorization_flow(settings, clients), settings.issuer.startswith("https://"))
    audit, clock = wiring.audit_log(settings, clients), default_clock()

    def shell(page: Any, cookie: CookiePolicy) -> BrowserEndpoint[Any]:
        return BrowserEndpoint(page=page, issuer=settings.issuer, audit=audit, clock=clock, cookie=cookie)

    return {
        "/authorize": shell(AuthorizePage(pages), CONSENT_CSRF),
        "/authorize/callback": shell(CallbackPage(pages), CONSENT_CSRF),
        "/authorize/consent": shell(ConsentForm(pages), CONSENT_CSRF),
        "/authorize/approver": shell(ApproverSignInPage(pages), CONSENT_CSRF),
    }


container: Container[dict[str, BrowserEndpoint[Any]]] = Container(wiring.from_environment(endpoints))


@app.route("/authorize", ALL_METHODS, kind=RouteKind.PAGE)
@app.route("/authorize/callback", ALL_METHODS, kind=RouteKind.PAGE)
@app.route("/authorize/consent", ALL_METHODS, kind=RouteKind.PAGE)
@app.route("/authorize/approver", ALL_METHODS, kind=RouteKind.PAGE)
def authorize(request: Request) -> Response:
    return container.get()[request.path].handle(request)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
