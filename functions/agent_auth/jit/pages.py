"""What the approval page says: the words for each verdict, and the facts an approver sees.

Plain text only. The one layout (web/html.py) escapes and lays it out; nothing here is HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent_auth.jit.approval import MAX_DENY_REASON, ApprovalResult, Choice, Verdict
from agent_auth.records import AccessRequest

REASON_HEADING = "Reason given"
DENY_REASON_LABEL = "Reason for denying (optional, shown in the audit trail)"
CHOICES: tuple[tuple[Choice, str], ...] = (("approve", "Approve"), ("deny", "Deny"))
"""The decision buttons, in order: (value, label)."""

WORDS: dict[Verdict, tuple[str, str]] = {
    "throttled": (
        "Too many invalid links",
        "This address sent too many invalid approval links. Wait a few minutes, then open the link from "
        "your email again.",
    ),
    "invalid": (
        "This link is not valid",
        "The link is incomplete or has been altered. Use the link from the email exactly as it was sent.",
    ),
    "link_expired": ("This link has expired", "The request can no longer be decided from this link."),
    "owner": (
        "You cannot decide this request",
        "You own the agent that asked. Another approver has to decide.",
    ),
    "approver_removed": (
        "You are no longer an approver",
        "You were removed from the approver group after this email was sent.",
    ),
    "policy_changed": (
        "This request is no longer allowed",
        "The policy changed since the agent asked: it may not hold this access any more.",
    ),
    "pending": ("Access request", "An agent asks for elevated access."),
    "request_expired": ("This request has expired", "Nobody decided in time; the agent may ask again."),
    "retry": ("Please try again", "Another decision was being made at the same moment."),
    "sign_in_required": (
        "Sign in to decide",
        "Your sign-in has ended. Open the link from your email again to sign in; nothing was decided.",
    ),
    "reason_refused": (
        "The reason was not accepted",
        f"Write at most {MAX_DENY_REASON} characters on one line, without control characters, then "
        "choose again. Nothing was decided.",
    ),
}


def words(result: ApprovalResult) -> tuple[str, str]:
    """The page's title and message."""
    request = result.request
    if result.verdict in ("approved", "denied") and request is not None:
        title = result.verdict.capitalize()
        message = f"{title} by {request.decided_by}."
        if result.refused is not None:
            label = dict(CHOICES)[result.refused]
            message += f" It was decided before your {label}, which was not recorded."
        return title, message
    if result.verdict == "wrong_approver":
        return (
            "This link is for someone else",
            f"This link is for {result.approver}; you are signed in as {result.signed_in_as}. "
            "Nothing was decided. Only the approver it was sent to can use it.",
        )
    return WORDS.get(result.verdict, WORDS["invalid"])


def duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour" + ("s" if seconds != 3600 else "")
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"


def describe(request: AccessRequest) -> tuple[tuple[str, str], ...]:
    """The facts an approver sees, as plain text."""
    scopes = "; ".join(f"{s} ({request.descriptions.get(s) or 'no description'})" for s in request.scopes)
    created = datetime.fromtimestamp(int(request.created_at), UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        ("Agent", str(request.client_id)),
        ("Owner", str(request.owner)),
        ("Scopes", scopes),
        ("Audience", str(request.audience_uri or request.audience)),
        ("Duration", duration_text(int(request.duration))),
        ("Single use", "yes" if request.single_use else "no"),
        ("Requested", created),
        ("Request id", str(request.request_id)),
    )
