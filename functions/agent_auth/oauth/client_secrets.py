"""Client secrets: 256 random bits, stored only as SHA-256, compared in constant time.

SHA-256 is the right hash for a random 256-bit secret: there is nothing to brute-force, and a
password hash would cost ~100 ms per token request (security.md, "Client authentication").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32
_UNKNOWN_CLIENT_HASH = hashlib.sha256(b"no client has this secret").hexdigest()


def generate_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant time, and the same work whether or not the client (or its secret) exists."""
    expected = stored_hash or _UNKNOWN_CLIENT_HASH
    return hmac.compare_digest(hash_secret(secret), expected) and stored_hash is not None


def previous_secret_matches(secret: str, previous_hash: str | None) -> bool:
    """The secret a rotation replaced, still in its grace period (the caller checks the time). Called for
    every secret presented, known client or not, so a grace period costs every request the same."""
    return secret_matches(secret, previous_hash)
