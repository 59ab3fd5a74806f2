"""Opaque one-time values we hand out (authorization codes, refresh tokens): random, stored as hashes.

A refresh token names its family so one read finds it: `rt_<family id>.<secret>`. Only the SHA-256 of
the whole value is stored, so a leaked table holds nothing a client could present (RFC 9700 §4.14).
"""

from __future__ import annotations

import hashlib
import re
import secrets

_REFRESH = re.compile(r"^rt_([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$")
_CODE = re.compile(r"^ac_[A-Za-z0-9_-]{43}$")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def new_code() -> str:
    return "ac_" + secrets.token_urlsafe(32)


def well_formed_code(value: str) -> bool:
    return bool(_CODE.fullmatch(value))


def new_family_id() -> str:
    return secrets.token_urlsafe(16)


def new_refresh_token(family_id: str) -> str:
    return f"rt_{family_id}.{secrets.token_urlsafe(32)}"


def family_of(refresh_token: str) -> str | None:
    """The family a well-formed refresh token names; None for anything else."""
    match = _REFRESH.fullmatch(refresh_token)
    return match.group(1) if match else None
