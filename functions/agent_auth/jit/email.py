"""The email an approver receives: a plain-text and an HTML part, the facts, and their own link."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape

from agent_auth.jit.pages import describe
from agent_auth.records import AccessRequest


def _header_safe(text: str) -> str:
    """Nothing client-supplied can add a header line: control characters become spaces."""
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def approval_email(
    *, sender: str, approver: str, request: AccessRequest, link: str, now: float
) -> EmailMessage:
    message = EmailMessage()
    scopes = ", ".join(request.scopes)
    message["Subject"] = _header_safe(f"Approve {request.client_id}: {scopes}?")
    message["From"] = sender
    message["To"] = approver
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    facts = describe(request)
    text = [f"{request.client_id} asks for elevated access.", ""]
    text += [f"{name}: {value}" for name, value in facts]
    text += [
        "",
        "Reason given:",
        str(request.reason),
        "",
        "Review and decide (this link is yours alone; do not forward it):",
        link,
        "",
        "Opening the link changes nothing; only the Approve or Deny button on the page decides.",
    ]
    message.set_content("\n".join(text))
    rows = "".join(f"<tr><th align=left>{escape(n)}</th><td>{escape(v)}</td></tr>" for n, v in facts)
    html = (
        f"<p><b>{escape(str(request.client_id))}</b> asks for elevated access.</p>"
        f"<table>{rows}</table><p><b>Reason given:</b></p>"
        f'<p style="white-space:pre-wrap">{escape(str(request.reason))}</p>'
        f'<p><a href="{escape(link)}">Review and decide</a> (this link is yours alone;'
        " do not forward it).</p>"
        "<p>Opening the link changes nothing; only the Approve or Deny button on the page decides.</p>"
    )
    message.add_alternative(html, subtype="html")
    return message
