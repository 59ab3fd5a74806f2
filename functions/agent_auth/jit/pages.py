"""The approval page: plain HTML, no JavaScript, every request value escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from agent_auth.jit.approval import Page
from agent_auth.records import AccessRequest

PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}

STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.3rem 1rem}dt{color:#666}dd{margin:0}
.reason{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;border-radius:4px}
button{font-size:1rem;padding:.5rem 1.5rem;margin-right:1rem;border-radius:4px;border:1px solid #888}
.approve{background:#1a7f37;color:#fff}.deny{background:#fff;color:#b00}"""


def duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour" + ("s" if seconds != 3600 else "")
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def describe(request: AccessRequest) -> list[tuple[str, str]]:
    """The facts an approver sees, as plain text (escaped by the caller)."""
    scopes = "; ".join(f"{s} ({request.descriptions.get(s) or 'no description'})" for s in request.scopes)
    created = datetime.fromtimestamp(int(request.created_at), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        ("Agent", str(request.client_id)),
        ("Owner", str(request.owner)),
        ("Scopes", scopes),
        ("Audience", str(request.audience_uri or request.audience)),
        ("Duration", duration_text(int(request.duration))),
        ("Single use", "yes" if request.single_use else "no"),
        ("Requested", created),
        ("Request id", str(request.request_id)),
    ]


def render(page: Page, *, hidden: dict[str, str] | None = None) -> str:
    """The form has no action: it posts back to the page's own URL, whatever stage or domain serves it."""
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(page.title)}</title>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(page.title)}</h1><p>{escape(page.message)}</p>",
    ]
    if page.request is not None:
        parts.append("<dl>")
        for name, value in describe(page.request):
            parts.append(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>")
        parts.append("</dl><h2>Reason given</h2>")
        parts.append(f'<p class="reason">{escape(str(page.request.reason))}</p>')
    if page.can_decide:
        fields = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in (hidden or {}).items()
        )
        parts.append(
            f'<form method="post">{fields}'
            '<button class="approve" name="decision" value="approve">Approve</button>'
            '<button class="deny" name="decision" value="deny">Deny</button></form>'
        )
    parts.append("</body></html>")
    return "".join(parts)
