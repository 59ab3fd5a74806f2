"""GET /approvals/{request_id}: the signed link's page. POST: Approve or Deny from that page.

Glue only. The browser-endpoint shell (web/browser_endpoint.py) owns methods, origin, the bound CSRF
token, the page headers and the one audit record; the approval service (jit/approval.py) decides;
jit/pages.py has the words; web/html.py lays them out.
"""

from __future__ import annotations

from typing import Any

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.audit import printable
from agent_auth.clock import default_clock
from agent_auth.config import Settings
from agent_auth.jit import pages
from agent_auth.jit.approval import (
    MAX_DENY_REASON,
    REASON_FIELD,
    ApprovalResult,
    ApprovalService,
    Decision,
    read_decision,
)
from agent_auth.jit.links import LINK_FIELDS, csrf_binding, sign_in_url
from agent_auth.oauth.authorize.stores import SESSION_COOKIE
from agent_auth.oauth.params import Form
from agent_auth.web.browser_endpoint import BrowserEndpoint, CookiePolicy, CsrfBinding, PageOutcome
from agent_auth.web.function import Container
from agent_auth.web.html import Button, PageForm, PageView, Quote, TextField
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import ALL_METHODS, Resolver, RouteKind

app = Resolver()
BUTTONS = tuple(
    Button(label, "decision", value, "primary" if value == "approve" else "secondary")
    for value, label in pages.CHOICES
)
DENY_REASON = TextField(REASON_FIELD, pages.DENY_REASON_LABEL, MAX_DENY_REASON)
SESSION = CookiePolicy(SESSION_COOKIE, same_site="Lax")
"""The signed-in user's session (handlers/authorize.py sets it): read only, for groups with sign_in."""


def _meta(request: Request) -> dict[str, str]:
    return {"http_request_id": request.http_request_id, "source_ip": request.source_ip}


def _request_id(request: Request) -> str:
    return request.path_params.get("request_id", "")


def page_outcome(result: ApprovalResult, issuer: str) -> PageOutcome:
    title, message = pages.words(result)
    request, link = result.request, result.link
    if link is not None and result.needs_sign_in:
        # The approver's group requires sign-in: through the upstream provider, then back here.
        return PageOutcome(302, PageView(title, ""), result.audit, redirect=sign_in_url(issuer, link))
    form = None
    if link and result.can_decide:
        form = PageForm(BUTTONS, tuple(link.params().items()), text=DENY_REASON)
    view = PageView(
        title,
        message,
        facts=pages.describe(request) if request else (),
        quote=Quote(pages.REASON_HEADING, str(request.reason)) if request else None,
        form=form,
    )
    csrf = CsrfBinding(*csrf_binding(link)) if link and result.can_decide else None
    return PageOutcome(result.status, view, result.audit, audited=result.committed, csrf=csrf)


class ApprovalPage:
    view_action = "approval.view"
    submit_action = "approval.decide"

    def __init__(self, service: ApprovalService, issuer: str) -> None:
        self._service = service
        self._issuer = issuer
        self._secure = issuer.startswith("https://")

    def _session(self, request: Request) -> str | None:
        return request.cookie(SESSION.cookie_name(self._secure))

    def view(self, request: Request) -> PageOutcome:
        params = {name: request.query_param(name) for name in LINK_FIELDS}
        result = self._service.view(_request_id(request), params, _meta(request), self._session(request))
        return page_outcome(result, self._issuer)

    def read(self, request: Request, form: Form) -> Decision | None:
        fields = {n: form.get(n) for n in (*LINK_FIELDS, "decision", REASON_FIELD)}
        return read_decision(_request_id(request), fields, self._session(request))

    def binding(self, submission: Decision) -> CsrfBinding:
        return CsrfBinding(*csrf_binding(submission.link))

    def submit(self, request: Request, submission: Decision) -> PageOutcome:
        return page_outcome(self._service.decide(submission, _meta(request)), self._issuer)

    def refusal_details(self, request: Request) -> dict[str, Any]:
        return {"access_request": printable(_request_id(request))}


def approval_endpoint(settings: Settings, clients: AwsClients) -> BrowserEndpoint[Decision]:
    return BrowserEndpoint(
        page=ApprovalPage(wiring.approval_service(settings, clients), settings.issuer),
        issuer=settings.issuer,
        audit=wiring.audit_log(settings, clients),
        clock=default_clock(),
        cookie=CookiePolicy("agent-auth-csrf", same_site="Strict"),
    )


endpoint: Container[BrowserEndpoint[Decision]] = Container(wiring.from_environment(approval_endpoint))


@app.route("/approvals/{request_id}", ALL_METHODS, kind=RouteKind.PAGE)
def approvals(request: Request) -> Response:
    return endpoint.get().handle(request)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
