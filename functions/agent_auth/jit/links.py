"""Approval links, signed with a KMS HMAC key (GenerateMac / VerifyMac).

A link is bound to one request, one approver, a digest of exactly what was requested, and an expiry.
It carries all four (`d` is the digest), so its MAC is verified over what the link itself says before
anything is read: a forged link costs one VerifyMac and reads nothing. The digest is then compared
with the stored request's, so a request changed after the email went out cannot be decided. A link
without a digest (the format before v2) is simply invalid. The signature is never logged or audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

from agent_auth.oauth.jose import MalformedJose, b64url_decode, b64url_encode


class MacSigner(Protocol):
    def generate_mac(self, message: bytes) -> bytes: ...


class MacVerifier(Protocol):
    def verify_mac(self, message: bytes, mac: bytes) -> bool: ...


LINK_FIELDS = ("approver", "d", "expires", "sig")
"""The query parameters of a link, carried back by the page's form."""
MAX_APPROVER = 320

_DIGITS = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ApprovalLink:
    request_id: str
    approver: str
    digest: str
    """jit.requests.request_digest of the request as it was when the link was signed."""
    expires_at: int
    signature: bytes

    def params(self) -> dict[str, str]:
        return {
            "approver": self.approver,
            "d": self.digest,
            "expires": str(self.expires_at),
            "sig": b64url_encode(self.signature),
        }

    def message(self) -> bytes:
        return link_message(self.request_id, self.approver, self.digest, self.expires_at)


def link_message(request_id: str, approver: str, digest: str, expires_at: int) -> bytes:
    return "\n".join(("agent-auth approval link v2", request_id, approver, digest, str(expires_at))).encode()


def sign_link(
    mac: MacSigner, *, request_id: str, approver: str, digest: str, expires_at: int
) -> ApprovalLink:
    signature = mac.generate_mac(link_message(request_id, approver, digest, expires_at))
    return ApprovalLink(request_id, approver, digest, expires_at, signature)


def link_url(issuer: str, link: ApprovalLink) -> str:
    return issuer + approval_path(link)


def approval_path(link: ApprovalLink) -> str:
    """The link's page under the issuer: `/approvals/ID?...`, where an approver who had to sign in
    returns to (only ever built from a parsed link, so it names no other place)."""
    return f"/approvals/{quote(link.request_id, safe='')}?{urlencode(link.params())}"


APPROVER_SIGN_IN_PATH = "/authorize/approver"
"""Where an approver of a group with `sign_in: true` starts signing in (handlers/authorize.py)."""


def sign_in_url(issuer: str, link: ApprovalLink) -> str:
    """The approver sign-in for this link: it carries the link, so the approver comes back to it."""
    return f"{issuer}{APPROVER_SIGN_IN_PATH}?{urlencode({'request': link.request_id, **link.params()})}"


def parse_link(request_id: str, params: Mapping[str, str | None]) -> ApprovalLink | None:
    """The link a page request carries, or None when it is not a whole, well-formed link."""
    approver, digest, expires, sig = (params.get(name) for name in LINK_FIELDS)
    if not (approver and digest and expires and sig) or not _REQUEST_ID.fullmatch(request_id):
        return None
    if len(approver) > MAX_APPROVER or not approver.isprintable():
        return None
    if not _DIGEST.fullmatch(digest) or not _DIGITS.fullmatch(expires) or len(sig) > 200:
        return None
    try:
        signature = b64url_decode(sig)
    except MalformedJose:
        return None
    return ApprovalLink(request_id, approver, digest, int(expires), signature)


def csrf_binding(link: ApprovalLink) -> tuple[bytes, bytes]:
    """The approval page's CSRF token is a MAC keyed by the link's own signature, over the request and
    the approver (web/browser_endpoint.CsrfTokens computes it): (key, context).

    Why the signature: it is a secret only holders of the link know (it is emailed to one approver and
    never logged), KMS verifies it on every decision anyway, and computing the token from it is a local
    HMAC: no extra KMS call per page or decision, and no second key to provision, rotate and grant.
    So a token proves it was issued for this link: a cookie and field pair chosen by someone without
    the link, or a token issued for another approver's or another request's link, does not verify. A
    key held only in KMS would add "the page was rendered by us" against someone who already holds
    the link, but that person can open the page and decide anyway; the link is the credential.
    """
    return link.signature, "\n".join((link.request_id, link.approver)).encode()
