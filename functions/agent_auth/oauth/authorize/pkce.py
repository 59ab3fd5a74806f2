"""Proof Key for Code Exchange (RFC 7636), S256 only (OAuth 2.1 §7.5.2: `plain` is not accepted)."""

from __future__ import annotations

import hashlib
import hmac
import re

from agent_auth.oauth.jose import b64url_encode

S256 = "S256"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
"""RFC 7636 §4.1: code_verifier = 43*128unreserved."""
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
"""base64url(SHA-256) without padding is exactly 43 characters."""


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.fullmatch(challenge))


def challenge_for(verifier: str) -> str:
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def verifier_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(challenge_for(verifier).encode(), challenge.encode())
