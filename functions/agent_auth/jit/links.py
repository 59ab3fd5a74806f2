"""Approval links, signed with a KMS HMAC key (GenerateMac / VerifyMac).

A link is bound to one request, one approver, a digest of exactly what was requested, and an expiry.
Changing any of them (or the request itself) makes VerifyMac fail. The signature is never logged or
audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

from agent_auth.oauth.jose import MalformedJose, b64url_decode, b64url_encode


class MacSigner(Protocol):
    def generate_mac(self, message: bytes) -> bytes: ...


class MacVerifier(Protocol):
    def verify_mac(self, message: bytes, mac: bytes) -> bool: ...


_DIGITS = re.compile(r"[0-9]{1,12}")


class LinkInvalid(Exception):
    pass


@dataclass(frozen=True)
class ApprovalLink:
    request_id: str
    approver: str
    expires_at: int
    signature: bytes

    def params(self) -> dict[str, str]:
        return {
            "approver": self.approver,
            "expires": str(self.expires_at),
            "sig": b64url_encode(self.signature),
        }


def link_message(request_id: str, approver: str, digest: str, expires_at: int) -> bytes:
    return "\n".join(("agent-auth approval link v1", request_id, approver, digest, str(expires_at))).encode()


def sign_link(
    mac: MacSigner, *, request_id: str, approver: str, digest: str, expires_at: int
) -> ApprovalLink:
    signature = mac.generate_mac(link_message(request_id, approver, digest, expires_at))
    return ApprovalLink(request_id, approver, expires_at, signature)


def link_url(issuer: str, link: ApprovalLink) -> str:
    return f"{issuer}/approvals/{quote(link.request_id, safe='')}?{urlencode(link.params())}"


def parse_link(request_id: str, params: dict[str, str | None]) -> ApprovalLink:
    approver, expires, sig = params.get("approver"), params.get("expires"), params.get("sig")
    if not approver or not expires or not sig or not _DIGITS.fullmatch(expires) or len(sig) > 200:
        raise LinkInvalid("incomplete link")
    try:
        signature = b64url_decode(sig)
    except MalformedJose as exc:
        raise LinkInvalid("signature is not base64url") from exc
    return ApprovalLink(request_id, approver[:320], int(expires), signature)
