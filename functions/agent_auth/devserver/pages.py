"""The development server's own pages: `/` (where to go next) and `/_dev/mailbox` for a browser.

The mailbox stays JSON for scripts and tests (`Accept: */*`, what curl sends); a browser, which asks for
`text/html` first, gets the same messages newest first with their links clickable, as MailHog shows
them. Both pages use web/html.py's style sheet and headers (its CSP allows that sheet and nothing else
to load or run), and escape every value: mail text quotes what agents wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import escape
from typing import Any

from agent_auth.web.html import STYLE, page_headers

Handler = Callable[[dict[str, Any], object], dict[str, Any]]
LINK = re.compile(r"https?://[^\s<>\"']+")
DISCOVERY = "/.well-known/oauth-authorization-server"


def _header(event: dict[str, Any], name: str) -> str:
    headers = event.get("headers") or {}
    return next((str(v) for k, v in headers.items() if k.lower() == name), "")


def wants_html(event: dict[str, Any]) -> bool:
    """A browser's Accept names text/html; curl's `*/*` and a script's application/json do not."""
    return "text/html" in _header(event, "accept").lower()


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _html(status: int, page: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": page_headers(), "body": page}


def _not_allowed(event: dict[str, Any]) -> dict[str, Any] | None:
    if event["httpMethod"] in ("GET", "HEAD"):
        return None
    return {"statusCode": 405, "headers": {"Allow": "GET, HEAD"}, "body": ""}


def linkified(text: str) -> str:
    """`text` escaped, with each http(s) URL in it a link to itself."""
    parts, last = [], 0
    for match in LINK.finditer(text):
        url = match.group(0).rstrip(".,;:)")
        end = match.start() + len(url)
        parts.append(escape(text[last : match.start()]))
        pieces = [piece for piece in re.split(r"(?<=[?&=/])", url) if piece]
        shown = "<wbr>".join(escape(piece) for piece in pieces)  # long links wrap at their separators
        parts.append(f'<a href="{escape(url)}">{shown}</a>')
        last = end
    parts.append(escape(text[last:]))
    return "".join(parts)


def mailbox_page(messages: list[dict[str, Any]]) -> str:
    if not messages:
        return _page(
            "Mailbox", "<p>No email yet. Approvers' emails land here when an agent asks for access.</p>"
        )
    items = [f"<p>{len(messages)} message(s), newest first.</p>"]
    for number, message in reversed(list(enumerate(messages, start=1))):
        items.append(
            f'<article id="message-{number}"><h2>{escape(str(message.get("subject", "")))}</h2><dl>'
            f"<dt>To</dt><dd>{escape(str(message.get('to', '')))}</dd>"
            f"<dt>Sent</dt><dd>{escape(str(message.get('sent_at', '')))}</dd></dl>"
            f'<p class="reason">{linkified(str(message.get("text", "")))}</p></article>'
        )
    return _page("Mailbox", "".join(items))


def mailbox_for_browsers(json_handler: Handler) -> Handler:
    """The JSON mailbox route, rendered as a page when the request asks for HTML."""

    def mailbox(event: dict[str, Any], context: object) -> dict[str, Any]:
        result = json_handler(event, context)
        if result["statusCode"] != 200 or not wants_html(event):
            return result
        return _html(200, mailbox_page(json.loads(result["body"])))

    return mailbox


def index_page(issuer: str) -> str:
    links = (
        (DISCOVERY, "Authorization server metadata (RFC 8414)"),
        ("/.well-known/openid-configuration", "OpenID configuration"),
        ("/jwks.json", "The keys tokens are signed with (JWKS)"),
        ("/_dev/mailbox", "Mailbox: every email the server sent, approval links included"),
        ("/_dev/clock", 'Development clock (POST JSON {"advance": SECONDS} to move it)'),
    )
    listed = "".join(f'<li><a href="{escape(path)}">{escape(text)}</a></li>' for path, text in links)
    steps = (
        "Get a token: the curl line `agent-auth dev` printed (secrets are in .agent-auth/credentials.json).",
        "Approve a request: README.md, “Approve a request”; the approvers' emails land in the mailbox.",
        "Operate: .venv/bin/agent-auth audit --dev, requests --dev, grants list --dev (README.md).",
        "Sign in as a user: README.md, “Sign in as a user”.",
    )
    body = (
        f"<p>The development server of agent-auth. Issuer: <code>{escape(issuer)}</code></p>"
        f"<ul>{listed}</ul><h2>Next steps</h2><ol>"
        + "".join(f"<li>{escape(step)}</li>" for step in steps)
        + "</ol><p>Only the development server has this page and the /_dev routes.</p>"
    )
    return _page("agent-auth dev", body)


def index_route(issuer: str) -> Handler:
    def index(event: dict[str, Any], context: object) -> dict[str, Any]:
        return _not_allowed(event) or _html(200, index_page(issuer))

    return index
