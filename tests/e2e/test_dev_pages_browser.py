"""The development server's pages in a real headless Chromium: `/` links what a newcomer needs next, and
the mailbox, asked for by a browser, lists the emails newest first with their links clickable. A
script's request for the mailbox still gets the JSON contract.

Needs Debian's chromium; without it the test skips with the reason, unless AGENT_AUTH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import httpx2
import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.test_approval_browser import ARTIFACTS, CHROMIUM_FLAGS, chromium
from tests.e2e.test_jit_flow import mail_for, poll


def ask(server: DevServer, reason: str) -> str:
    asked = httpx2.post(
        f"{server.issuer}/access-requests",
        auth=("support-bot", server.credentials["support-bot"]["client_secret"]),
        data={"scope": "crm.contacts.write", "reason": reason, "duration": "600"},
    )
    assert asked.status_code == 202, asked.text
    request_id = str(asked.json()["request_id"])
    mail_for(server, request_id)  # delivered
    return request_id


@pytest.mark.browser
def test_the_home_page_and_the_mailbox_in_a_browser(dev_server: DevServer) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    older, newer = ask(dev_server, "First request"), ask(dev_server, "Second request")
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900}, java_script_enabled=False)
            # Given the home page / Then it links discovery, the keys and the mailbox
            response = page.goto(f"{dev_server.issuer}/")
            assert response is not None and response.status == 200
            assert page.locator("h1").inner_text() == "agent-auth dev"
            hrefs = page.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
            assert {"/.well-known/oauth-authorization-server", "/jwks.json", "/_dev/mailbox"} <= set(hrefs)
            assert "Next steps" in page.content()
            page.screenshot(path=str(ARTIFACTS / "dev-home.png"), full_page=True)
            page.get_by_role("link", name="The keys tokens are signed with (JWKS)").click()
            assert "keys" in page.content()
            page.go_back()

            # When the mailbox link is followed / Then the emails are listed, newest first
            page.get_by_role("link", name="Mailbox", exact=False).click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Mailbox"
            texts = page.locator("article").all_inner_texts()
            first_newer = next(i for i, t in enumerate(texts) if newer in t)
            first_older = next(i for i, t in enumerate(texts) if older in t)
            assert first_newer < first_older
            page.screenshot(path=str(ARTIFACTS / "dev-mailbox.png"), full_page=True)

            # And an approval link in it is clickable and opens the approval page
            link = page.locator(f"article a[href*='/approvals/{newer}']").first
            link.click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == "Access request"
            assert "Second request" in page.locator(".reason").inner_text()
            assert (
                poll(dev_server, newer).json()["error"] == "authorization_pending"
            )  # viewing decides nothing
        finally:
            browser.close()

    # And a script still gets JSON, oldest first as before
    listed = httpx2.get(f"{dev_server.issuer}/_dev/mailbox")
    assert listed.headers["content-type"] == "application/json"
    subjects = [m["text"] for m in listed.json()]
    assert min(i for i, t in enumerate(subjects) if older in t) < min(
        i for i, t in enumerate(subjects) if newer in t
    )
