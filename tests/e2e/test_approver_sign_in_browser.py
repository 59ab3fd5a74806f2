"""Approvers who sign in, in a real headless Chromium through `agent-auth dev` (JavaScript off).

support-leads is applied with `sign_in: true`. The approver opens the emailed link (from the dev
mailbox), is sent to the development OpenID provider, signs in as the approver, comes back and
approves. A forwarded link opened by someone who signs in as another user is refused and changes
nothing. A denial with a reason is stored and listed by `agent-auth requests`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.conftest import DevServer, start_dev_server, stop_dev_server
from tests.e2e.test_approval_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium
from tests.e2e.test_jit_flow import advance, link_in, mail_for, poll
from tests.support import policy_document, rsa_key

pytestmark = pytest.mark.browser
LEAD = "lead@example.com"


@pytest.fixture(scope="module")
def signing_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    key = rsa_key()
    document = policy_document({"rsa": key})
    document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")
    members = document["approvers"]["support-leads"]
    document["approvers"]["support-leads"] = {"members": members, "sign_in": True}
    server = start_dev_server(tmp_path_factory.mktemp("dev-sign-in"), key, document=document)
    try:
        yield server
    finally:
        stop_dev_server(server.process)


def ask(server: DevServer, reason: str = "Merge duplicate contacts (ticket 4821)") -> tuple[str, str]:
    asked = httpx2.post(
        f"{server.issuer}/access-requests",
        auth=("support-bot", server.credentials["support-bot"]["client_secret"]),
        data={"scope": "crm.contacts.write", "reason": reason, "duration": "1800"},
    )
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["request_id"]
    return request_id, link_in(mail_for(server, request_id))


def browse(run: Any) -> None:
    """Run `run(page)` in a fresh browser (its own cookies: one person's browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760}, java_script_enabled=False)
            run(page)
        finally:
            browser.close()


def sign_in_as(page: Any, link: str, user: str) -> None:
    """Open the link; the approval page sends the browser to the provider's sign-in form."""
    page.goto(link)
    assert page.locator("input[name=username]").count() == 1, page.content()
    page.fill("input[name=username]", user)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_the_approver_signs_in_returns_and_approves(signing_in: DevServer) -> None:
    request_id, link = ask(signing_in)

    def run(page: Any) -> None:
        sign_in_as(page, link, LEAD)
        # Back on the approval page, as the link's approver
        assert page.url == link
        assert page.locator("h1").inner_text() == "Access request"
        assert "ticket 4821" in page.locator(".reason").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "approval-signed-in.png"), full_page=True)
        assert poll(signing_in, request_id).json()["error"] == "authorization_pending"
        page.get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Approved"
        assert LEAD in page.content()

    browse(run)
    advance(signing_in, 5)
    granted = poll(signing_in, request_id)
    assert granted.status_code == 200 and granted.json()["scope"] == "crm.contacts.write"
    assert Path(ARTIFACTS / "approval-signed-in.png").stat().st_size > 10_000


def test_a_forwarded_link_opened_by_another_user_is_refused_and_changes_nothing(
    signing_in: DevServer,
) -> None:
    request_id, link = ask(signing_in, "Forwarded by mistake (ticket 99)")
    before = signing_in.cli("requests", "--dev", "--json")

    def run(page: Any) -> None:
        sign_in_as(page, link, "mallory@example.com")
        assert page.locator("h1").inner_text() == "This link is for someone else"
        text = page.locator("p").first.inner_text()
        assert f"This link is for {LEAD}; you are signed in as mallory@example.com" in text
        assert page.get_by_role("button", name="Approve").count() == 0
        assert "ticket 99" not in page.content()  # nothing about the request is shown
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "approval-wrong-approver.png"), full_page=True)

    browse(run)
    advance(signing_in, 5)
    assert poll(signing_in, request_id).json()["error"] == "authorization_pending"
    assert signing_in.cli("requests", "--dev", "--json").stdout == before.stdout
    audit = signing_in.cli("audit", "--dev", "--json")
    refusals = [
        r
        for r in map(json.loads, audit.stdout.splitlines())
        if r.get("reason") == "wrong_approver" and r.get("user") == "mallory@example.com"
    ]
    assert len(refusals) == 1 and refusals[0]["approver"] == LEAD


def test_the_approver_denies_with_a_reason(signing_in: DevServer) -> None:
    request_id, link = ask(signing_in, "Export all contacts (ticket 5000)")

    def run(page: Any) -> None:
        sign_in_as(page, link, LEAD)
        assert page.locator("h1").inner_text() == "Access request"
        page.fill("input[name=reason]", "Exports need the data owner's sign-off")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "approval-deny-reason.png"), full_page=True)
        page.get_by_role("button", name="Deny").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Denied"

    browse(run)
    advance(signing_in, 5)
    denied = poll(signing_in, request_id)
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"
    assert "sign-off" not in denied.text  # a fixed error_description (RFC 6749 §5.2)
    rows = [json.loads(line) for line in signing_in.cli("requests", "--dev", "--json").stdout.splitlines()]
    [row] = [r for r in rows if r["request_id"] == request_id]
    assert (row["status"], row["deny_reason"]) == ("denied", "Exports need the data owner's sign-off")
    audit = [json.loads(line) for line in signing_in.cli("audit", "--dev", "--json").stdout.splitlines()]
    assert any(r.get("reason") == "denied: Exports need the data owner's sign-off" for r in audit)
