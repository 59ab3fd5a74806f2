"""One layout for every browser page: approval today; sign-in, consent and /authorize's error pages next.

Plain HTML with no JavaScript, so every page works as a plain form (docs: product contracts). Every
value the layout is given (title, message, facts, quoted text, hidden fields, buttons) is escaped here,
once, so no caller can forget to: request text is written by agents, and an agent is not trusted.

A form has no `action`: it posts back to the page's own URL, whatever stage or domain serves it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.3rem 1rem}dt{color:#666}dd{margin:0}
.reason{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;border-radius:4px}
button{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem;border-radius:4px;border:1px solid #888}
.primary{background:#1a7f37;color:#fff}.secondary{background:#fff;color:#b00}"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


def page_headers(*, form_targets: Sequence[str] = ()) -> dict[str, str]:
    """The headers of every page. The style sheet is allowed by its hash, nothing else runs or loads.

    `form-action` also governs where a form's POST may redirect (CSP Level 3): a page whose POST ends
    in a redirect to another origin (consent, to the client's redirect URI) names that origin here.
    """
    form_action = " ".join(("'self'", *form_targets))
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
    }


PAGE_HEADERS = page_headers()


@dataclass(frozen=True)
class Button:
    """A submit button: `name=value` is what the POST carries when it is clicked."""

    label: str
    name: str
    value: str
    style: Literal["primary", "secondary"] = "primary"


@dataclass(frozen=True)
class TextField:
    """An optional one-line text input (a reason for denying), bounded by `maxlength`."""

    name: str
    label: str
    max_length: int


@dataclass(frozen=True)
class PageForm:
    buttons: tuple[Button, ...]
    hidden: tuple[tuple[str, str], ...] = ()
    text: TextField | None = None


@dataclass(frozen=True)
class Quote:
    """Words someone else wrote (a requester's reason), shown as written under a heading."""

    heading: str
    text: str


@dataclass(frozen=True)
class PageView:
    title: str
    message: str
    facts: tuple[tuple[str, str], ...] = ()
    """(name, value) pairs, shown as a definition list."""
    quote: Quote | None = None
    form: PageForm | None = None


def render(view: PageView) -> str:
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(view.title)}</title>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(view.title)}</h1><p>{escape(view.message)}</p>",
    ]
    if view.facts:
        parts.append("<dl>")
        parts += [f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in view.facts]
        parts.append("</dl>")
    if view.quote is not None:
        parts.append(f"<h2>{escape(view.quote.heading)}</h2>")
        parts.append(f'<p class="reason">{escape(view.quote.text)}</p>')
    if view.form is not None:
        fields = "".join(
            f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
            for name, value in view.form.hidden
        )
        if view.form.text is not None:
            text = view.form.text
            fields += (
                f"<p><label>{escape(text.label)}<br>"
                f'<input type="text" name="{escape(text.name)}" maxlength="{int(text.max_length)}" '
                'size="50"></label></p>'
            )
        buttons = "".join(
            f'<button class="{b.style}" name="{escape(b.name)}" value="{escape(b.value)}">'
            f"{escape(b.label)}</button>"
            for b in view.form.buttons
        )
        parts.append(f'<form method="post">{fields}{buttons}</form>')
    parts.append("</body></html>")
    return "".join(parts)
