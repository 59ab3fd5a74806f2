"""A real headless Chromium opens the approval link, sees the page, clicks Approve; screenshots are kept.

Needs Debian's chromium (`apt-get install chromium`). Without it the test skips with the reason, unless
AGENT_AUTH_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx2
import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.test_jit_flow import advance, link_in, mail_for, poll
from tests.support import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "no Chromium found (apt-get install chromium, or set CHROMIUM)"
    if os.environ.get("AGENT_AUTH_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.mark.browser
def test_approver_clicks_approve_in_a_real_browser(dev_server: DevServer) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    asked = httpx2.post(
        f"{dev_server.issuer}/access-requests",
        auth=("support-bot", dev_server.credentials["support-bot"]["client_secret"]),
        data={
            "scope": "crm.contacts.write",
            "reason": "Customer asked to merge duplicate contacts (ticket 4821)",
            "duration": "1800",
        },
    )
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["request_id"]
    link = link_in(mail_for(dev_server, request_id))
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 760}, java_script_enabled=False)
            response = page.goto(link)
            assert response is not None and response.status == 200
            assert page.locator("h1").inner_text() == "Access request"
            assert "ticket 4821" in page.locator(".reason").inner_text()
            page.screenshot(path=str(ARTIFACTS / "approval-page.png"), full_page=True)
            # Viewing changed nothing
            assert poll(dev_server, request_id).json()["error"] == "authorization_pending"

            page.get_by_role("button", name="Approve").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Approved"
            assert "lead@example.com" in page.content()
            page.screenshot(path=str(ARTIFACTS / "approval-approved.png"), full_page=True)
        finally:
            browser.close()

    advance(dev_server, 5)
    granted = poll(dev_server, request_id)
    assert granted.status_code == 200 and granted.json()["scope"] == "crm.contacts.write"
    assert Path(ARTIFACTS / "approval-page.png").stat().st_size > 10_000
