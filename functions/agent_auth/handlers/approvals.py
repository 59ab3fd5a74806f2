"""GET /approvals/{request_id}: the signed link's page. POST: Approve or Deny from that page.

GET and HEAD never change anything (mail scanners follow links). The page sets a random CSRF token in a
SameSite=Strict cookie and in the form; a POST must carry both, equal (double submit), and any Origin
the browser names must be ours.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from agent_auth import wiring
from agent_auth.config import Settings
from agent_auth.errors import InvalidRequest
from agent_auth.jit.approval import ApprovalService, Page
from agent_auth.jit.links import ApprovalLink, LinkInvalid, parse_link
from agent_auth.jit.pages import PAGE_HEADERS, render
from agent_auth.web.forms import parse_form
from agent_auth.web.function import Container
from agent_auth.web.request import Request, Response
from agent_auth.web.resolver import Resolver

app = Resolver()
CSRF_FIELD = "csrf"


_settings = Container(Settings.from_env)
settings = _settings.get
_service: Container[ApprovalService] = Container(wiring.from_environment(wiring.approval_service))
service = _service.get


def _cookie_name() -> str:
    # __Host- cookies need Secure, which a plain-http development issuer cannot set.
    return "__Host-agent-auth-csrf" if settings().issuer.startswith("https://") else "agent-auth-csrf"


def _meta(request: Request) -> dict[str, str]:
    return {"http_request_id": request.http_request_id, "source_ip": request.source_ip}


def _page(page: Page, request: Request, csrf: str | None = None) -> Response:
    headers = dict(PAGE_HEADERS)
    hidden: dict[str, str] = {}
    if page.can_decide and csrf:
        secure = "; Secure" if settings().issuer.startswith("https://") else ""
        headers["Set-Cookie"] = f"{_cookie_name()}={csrf}; Path=/; HttpOnly; SameSite=Strict{secure}"
        hidden = {**{k: v for k, v in _link_params(request).items() if v}, CSRF_FIELD: csrf}
    body = render(page, hidden=hidden)
    return Response(status=page.status, body="" if request.method == "HEAD" else body, headers=headers)


def _link_params(request: Request) -> dict[str, str | None]:
    return {name: request.query_param(name) for name in ("approver", "expires", "sig")}


@app.route("/approvals/{request_id}", ("GET", "HEAD"))
def view(request: Request) -> Response:
    try:
        link = parse_link(request.path_params["request_id"], _link_params(request))
    except LinkInvalid:
        return _page(
            service().malformed("approval.view", request.path_params["request_id"], _meta(request)), request
        )
    return _page(service().view(link, _meta(request)), request, csrf=secrets.token_urlsafe(24))


def _decision_form(request: Request) -> tuple[ApprovalLink, str, str] | None:
    """The link, the decision and the CSRF token from the page's form; None when the POST is not the
    page's form (wrong content type, link fields missing, no decision)."""
    try:
        form = parse_form(request)
        link = parse_link(
            request.path_params["request_id"], {n: form.get(n) for n in ("approver", "expires", "sig")}
        )
    except (InvalidRequest, LinkInvalid):
        return None
    decision = form.get("decision")
    return (link, decision, form.get(CSRF_FIELD) or "") if decision in ("approve", "deny") else None


@app.route("/approvals/{request_id}", ("POST",))
def decide(request: Request) -> Response:
    submitted = _decision_form(request)
    if submitted is None:
        return _page(
            service().malformed("approval.decide", request.path_params["request_id"], _meta(request)), request
        )
    link, decision, sent = submitted
    expected = request.cookie(_cookie_name()) or ""
    # Browsers send `Origin: null` from a page with Referrer-Policy: no-referrer (Fetch standard), so only
    # a foreign origin is refused here; the double-submit token is what proves the page was ours.
    origin = request.header("origin")
    issuer = urlsplit(settings().issuer)
    ours = (None, "null", f"{issuer.scheme}://{issuer.netloc}")
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()) or origin not in ours:
        page = Page(
            403,
            "Please use the page from your email",
            "This decision did not come from the approval page. Open the link again and decide there.",
        )
        service().refuse(link, "csrf", _meta(request))
        return _page(page, request)
    return _page(service().decide(link, decision, _meta(request)), request)


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return app.resolve(event, context)
