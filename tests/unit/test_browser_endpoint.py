"""The browser-endpoint shell, with a fake page: methods, origin, the bound CSRF token, the page headers
and exactly one audit record per request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from agent_auth.audit import AuditRecord
from agent_auth.clock import FixedClock
from agent_auth.devserver.events import rest_proxy_event
from agent_auth.errors import AccessDenied, DependencyFailure, MethodNotAllowed, TemporarilyUnavailable
from agent_auth.oauth.params import Form
from agent_auth.web.browser_endpoint import (
    BrowserEndpoint,
    CookiePolicy,
    CsrfBinding,
    CsrfTokens,
    PageOutcome,
)
from agent_auth.web.html import Button, PageForm, PageView
from agent_auth.web.request import Request
from agent_auth.web.resolver import Resolver, RouteKind
from tests.unit.fakes import FakeAudit

HTTPS = "https://auth.example.com/v1"
ORIGIN = "https://auth.example.com"


def _record(action: str, reason: str) -> AuditRecord:
    return AuditRecord(action=action, decision="allow", at=0, reason=reason)


@dataclass
class FakePage:
    """A page whose form carries `thing`; its token is bound to that thing."""

    view_action: str = "thing.view"
    submit_action: str = "thing.submit"
    fail_with: Exception | None = None
    submitted: list[str] = field(default_factory=list)
    audited_in_transaction: bool = False

    def view(self, request: Request) -> PageOutcome:
        if self.fail_with:
            raise self.fail_with
        form = PageForm((Button("Go", "go", "1"),), (("thing", "a"),))
        return PageOutcome(
            200, PageView("Thing", "Decide", form=form), _record("thing.view", "shown"), csrf=binding("a")
        )

    def read(self, request: Request, form: Form) -> str | None:
        return form.get("thing")

    def binding(self, submission: str) -> CsrfBinding:
        return binding(submission)

    def submit(self, request: Request, submission: str) -> PageOutcome:
        self.submitted.append(submission)
        return PageOutcome(
            200,
            PageView("Done", "Done"),
            _record("thing.submit", "done"),
            audited=self.audited_in_transaction,
        )

    def refusal_details(self, request: Request) -> dict[str, Any]:
        return {"thing": "id"}


def binding(thing: str) -> CsrfBinding:
    return CsrfBinding(key=b"secret-of-" + thing.encode(), context=thing.encode())


def endpoint(page: FakePage, audit: FakeAudit, issuer: str = HTTPS, **cookie: Any) -> BrowserEndpoint[str]:
    return BrowserEndpoint(
        page=page, issuer=issuer, audit=audit, clock=FixedClock(1000), cookie=CookiePolicy(**cookie)
    )


def get(method: str = "GET") -> Request:
    return Request.from_event(rest_proxy_event(method=method, path="/thing"))


def post(
    fields: dict[str, str],
    *,
    cookie: str | None = None,
    origin: str | None = ORIGIN,
    content_type: str = "application/x-www-form-urlencoded",
    **headers: str,
) -> Request:
    sent = [("Content-Type", content_type)]
    sent += [("Cookie", f"__Host-agent-auth-csrf={cookie}")] if cookie is not None else []
    sent += [("Origin", origin)] if origin is not None else []
    sent += [(k.replace("_", "-"), v) for k, v in headers.items()]
    return Request.from_event(
        rest_proxy_event(method="POST", path="/thing", headers=sent, body=urlencode(fields).encode())
    )


def issued(response_body: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', response_body)
    assert match, response_body
    return match.group(1)


# --- GET and HEAD ------------------------------------------------------------------------------------


def test_get_shows_the_page_with_a_bound_token_in_cookie_and_form_and_one_record() -> None:
    page, audit = FakePage(), FakeAudit()
    response = endpoint(page, audit).handle(get())
    token = issued(response.body)
    assert response.status == 200 and page.submitted == []
    assert CsrfTokens.verify(token, token, binding("a")) and not CsrfTokens.verify(token, token, binding("b"))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"__Host-agent-auth-csrf={token};")
    assert all(flag in cookie for flag in ("Path=/", "HttpOnly", "SameSite=Strict", "Secure"))
    assert [r.reason for r in audit.records] == ["shown"]


def test_every_page_carries_the_page_headers() -> None:
    headers = endpoint(FakePage(), FakeAudit()).handle(get()).headers
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp and "script-src" not in csp


def test_head_has_the_status_and_headers_but_no_body() -> None:
    response = endpoint(FakePage(), FakeAudit()).handle(get("HEAD"))
    assert response.status == 200 and response.body == "" and "Set-Cookie" in response.headers


def test_plain_http_loopback_uses_the_plain_cookie_name_without_secure() -> None:
    response = endpoint(FakePage(), FakeAudit(), issuer="http://127.0.0.1:8000").handle(get())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("agent-auth-csrf=") and "Secure" not in cookie


def test_same_site_is_a_parameter() -> None:
    response = endpoint(FakePage(), FakeAudit(), same_site="Lax").handle(get())
    assert "SameSite=Lax" in response.headers["Set-Cookie"]


# --- POST -------------------------------------------------------------------------------------------


def token_for(thing: str) -> str:
    return CsrfTokens.token(CsrfTokens.nonce(), binding(thing))


def test_a_post_with_the_pages_token_is_submitted() -> None:
    page, audit = FakePage(), FakeAudit()
    token = issued(endpoint(page, FakeAudit()).handle(get()).body)
    response = endpoint(page, audit).handle(post({"thing": "a", "csrf": token}, cookie=token))
    assert response.status == 200 and page.submitted == ["a"]
    assert [r.reason for r in audit.records] == ["done"]


A, B = token_for("a"), token_for("b")
REFUSED: dict[str, tuple[dict[str, str], str | None, dict[str, str]]] = {
    "no field": ({"thing": "a"}, A, {}),
    "no cookie": ({"thing": "a", "csrf": A}, None, {}),
    "a pair never issued": ({"thing": "a", "csrf": "x" * 32}, "x" * 32, {}),
    "a forged MAC": ({"thing": "a", "csrf": "A" * 32 + ".00"}, "A" * 32 + ".00", {}),
    "issued for another thing": ({"thing": "a", "csrf": B}, B, {}),
    "foreign origin": ({"thing": "a", "csrf": A}, A, {"origin": "https://evil.test"}),
    "cross-site fetch": ({"thing": "a", "csrf": A}, A, {"Sec_Fetch_Site": "cross-site"}),
    "non-ascii field": ({"thing": "a", "csrf": "é"}, "é", {}),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_post_without_a_bound_token_from_our_origin_is_refused_once(case: str) -> None:
    fields, cookie, headers = REFUSED[case]
    if "origin" not in headers:
        headers = {**headers, "origin": ORIGIN}
    page, audit = FakePage(), FakeAudit()
    request = post(fields, cookie=cookie, **headers)
    with pytest.raises(AccessDenied) as refused:
        endpoint(page, audit).handle(request)
    assert refused.value.status == 403 and page.submitted == []
    [record] = audit.records
    assert (record.action, record.decision, record.reason) == ("thing.submit", "deny", "csrf")
    assert record.details == {"thing": "id", "status": 403}


def test_a_token_and_cookie_that_differ_are_refused() -> None:
    page = FakePage()
    with pytest.raises(AccessDenied):
        endpoint(page, FakeAudit()).handle(
            post({"thing": "a", "csrf": token_for("a")}, cookie=token_for("a"))
        )
    assert page.submitted == []


@pytest.mark.parametrize("origin", ["null", None])
def test_origin_null_and_no_origin_are_accepted(origin: str | None) -> None:
    # Browsers send `Origin: null` for a form posted from a Referrer-Policy: no-referrer page
    page, token = FakePage(), token_for("a")
    request = post({"thing": "a", "csrf": token}, cookie=token, origin=origin, Sec_Fetch_Site="same-origin")
    assert endpoint(page, FakeAudit()).handle(request).status == 200 and page.submitted == ["a"]


@pytest.mark.parametrize(
    ("fields", "content_type", "reason"),
    [
        ({"other": "x"}, "application/x-www-form-urlencoded", "not_the_form"),
        ({"thing": "a"}, "text/plain", "not_the_form:wrong_content_type"),
    ],
)
def test_a_post_that_is_not_the_pages_form_is_refused_once(
    fields: dict[str, str], content_type: str, reason: str
) -> None:
    page, audit = FakePage(), FakeAudit()
    with pytest.raises(AccessDenied):
        endpoint(page, audit).handle(post(fields, cookie="x", content_type=content_type))
    assert [r.reason for r in audit.records] == [reason] and page.submitted == []


def test_other_methods_are_405_with_allow_and_audited() -> None:
    page, audit = FakePage(), FakeAudit()
    with pytest.raises(MethodNotAllowed) as refused:
        endpoint(page, audit).handle(get("PUT"))
    assert refused.value.headers() == {"Allow": "GET, HEAD, POST"}
    assert [r.reason for r in audit.records] == ["method_not_allowed"]


# --- exactly one audit record ------------------------------------------------------------------------


def test_a_record_written_in_the_use_cases_transaction_is_not_written_again() -> None:
    page, audit, token = FakePage(audited_in_transaction=True), FakeAudit(), token_for("a")
    endpoint(page, audit).handle(post({"thing": "a", "csrf": token}, cookie=token))
    assert audit.records == []


def test_a_dependency_failure_is_a_503_with_one_record() -> None:
    page, audit = FakePage(fail_with=DependencyFailure("KMS throttled")), FakeAudit()
    with pytest.raises(TemporarilyUnavailable):
        endpoint(page, audit).handle(get())
    [record] = audit.records
    assert (record.action, record.reason) == ("thing.view", "dependency_failure")


def test_a_bug_is_recorded_once_and_re_raised() -> None:
    page, audit = FakePage(fail_with=RuntimeError("secret internals")), FakeAudit()
    with pytest.raises(RuntimeError):
        endpoint(page, audit).handle(get())
    assert [r.reason for r in audit.records] == ["internal_error"]


def test_through_the_resolver_refusals_are_html_pages_and_a_lost_record_fails_closed() -> None:
    app = Resolver()
    audit = FakeAudit()
    shell = endpoint(FakePage(), audit)
    app.route("/thing", ("GET", "HEAD", "POST", "PUT"), kind=RouteKind.PAGE)(shell.handle)
    refused = app.resolve(rest_proxy_event(method="PUT", path="/thing"))
    assert refused["statusCode"] == 405 and refused["headers"]["Allow"] == "GET, HEAD, POST"
    assert refused["headers"]["Content-Type"] == "text/html; charset=utf-8"
    # When the audit record cannot be written, the page is not shown
    audit.fail = True
    failed = app.resolve(rest_proxy_event(method="GET", path="/thing"))
    assert failed["statusCode"] == 503 and "Decide" not in failed["body"] and "csrf" not in failed["body"]
