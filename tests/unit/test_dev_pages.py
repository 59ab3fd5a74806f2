"""The development server's pages: the mailbox as HTML only for a browser, escaped, newest first; `/`."""

from __future__ import annotations

import json
from typing import Any

from agent_auth.devserver.events import rest_proxy_event
from agent_auth.devserver.pages import index_route, linkified, mailbox_for_browsers

MESSAGES = [
    {"to": "lead@example.com", "subject": "first", "text": "old", "html": "", "sent_at": "t1"},
    {
        "to": "lead@example.com",
        "subject": "<b>second</b>",
        "text": 'Open http://127.0.0.1:8000/approvals/req_1?a=1&b="x"><script>. Thanks',
        "html": "",
        "sent_at": "t2",
    },
]


def json_mailbox(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(MESSAGES)}


def get(handler: Any, accept: str | None, path: str = "/_dev/mailbox") -> dict[str, Any]:
    headers = [("Accept", accept)] if accept else []
    result: dict[str, Any] = handler(rest_proxy_event(method="GET", path=path, headers=headers), None)
    return result


def test_scripts_get_json_and_browsers_get_a_page() -> None:
    mailbox = mailbox_for_browsers(json_mailbox)
    for accept in (None, "*/*", "application/json"):
        assert json.loads(get(mailbox, accept)["body"]) == MESSAGES
    page = get(mailbox, "text/html,application/xhtml+xml,*/*;q=0.8")
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page["headers"]["Content-Security-Policy"]
    body = page["body"]
    assert body.index("<h2>&lt;b&gt;second&lt;/b&gt;</h2>") < body.index("<h2>first</h2>")  # newest first
    assert "<script>" not in body and "<b>second" not in body


def test_links_are_clickable_and_cannot_break_out_of_their_attribute() -> None:
    html = linkified('Open http://h/approvals/r?a=1&b="x"><script>. Thanks')
    assert html.startswith('Open <a href="http://h/approvals/r?a=1&amp;b=">')
    assert "&quot;x&quot;&gt;&lt;script&gt;. Thanks" in html
    assert linkified("javascript:alert(1) ftp://x") == "javascript:alert(1) ftp://x"
    assert linkified("see http://h/x.") == 'see <a href="http://h/x">http:/<wbr>/<wbr>h/<wbr>x</a>.'


def test_the_home_page_links_discovery_keys_and_mailbox() -> None:
    index = index_route("http://127.0.0.1:8000")
    page = get(index, "text/html", path="/")
    assert page["statusCode"] == 200
    for href in ("/.well-known/oauth-authorization-server", "/jwks.json", "/_dev/mailbox"):
        assert f'href="{href}"' in page["body"]
    posted = index(rest_proxy_event(method="POST", path="/", body=b""), None)
    assert posted["statusCode"] == 405 and posted["headers"]["Allow"] == "GET, HEAD"
