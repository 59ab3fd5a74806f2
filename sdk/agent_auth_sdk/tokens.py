"""Access tokens as the agent holds them, and the cache that asks the server once for many callers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_auth_sdk.errors import AgentAuthError

REFRESH_AT = 0.75
"""A token is renewed once 75% of its lifetime has passed, so callers rarely hold one near its end."""
EXPIRY_MARGIN = 5
"""While a renewal is in flight others keep the current token, unless it ends within this many seconds."""


@dataclass(frozen=True)
class Token:
    access_token: str
    token_type: str
    expires_at: float
    refresh_at: float
    scope: str | None = None
    issued_token_type: str | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple((self.scope or "").split())

    def __repr__(self) -> str:  # never print the token itself
        return f"Token(scope={self.scope!r}, expires_at={self.expires_at:.0f})"

    @classmethod
    def from_response(cls, body: Any, now: float) -> Token:
        """RFC 6749 §5.1 (and RFC 8693 §2.2.1): a Bearer token; without expires_in, never reused."""
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise AgentAuthError("The token response has no access_token")
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise AgentAuthError("The token response is not a Bearer token")
        lifetime = body.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 0.0
        scope = body.get("scope")
        issued = body.get("issued_token_type")
        return cls(
            access_token=body["access_token"],
            token_type="Bearer",
            expires_at=now + seconds,
            refresh_at=now + seconds * REFRESH_AT,
            scope=scope if isinstance(scope, str) else None,
            issued_token_type=issued if isinstance(issued, str) else None,
        )


class _Slot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: Token | None = None
        self.attempts = 0
        self.error: BaseException | None = None
        """How the last attempt failed: callers that waited for it share the failure, not retry it."""


class TokenCache:
    """One slot per (scope, resource). A fresh token is returned without locking; a stale one is renewed
    by exactly one caller while the others wait (or keep the still-valid old token)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._guard = threading.Lock()

    def fresh(self, key: tuple[str, str]) -> Token | None:
        slot = self._slots.get(key)
        token = slot.token if slot else None
        return token if token is not None and self._clock() < token.refresh_at else None

    def get(self, key: tuple[str, str], fetch: Callable[[], Token]) -> Token:
        token = self.fresh(key)
        if token is not None:
            return token
        with self._guard:
            slot = self._slots.setdefault(key, _Slot())
        current, attempts = slot.token, slot.attempts
        usable = current is not None and self._clock() < current.expires_at - EXPIRY_MARGIN
        if not slot.lock.acquire(blocking=not usable):
            assert current is not None
            return current  # someone else is renewing it; this one is still good
        try:
            token = self.fresh(key)
            if token is not None:
                return token  # renewed while we waited for the lock
            if slot.attempts != attempts and slot.error is not None:
                raise slot.error  # the attempt we waited for failed: one request, one failure for all
            try:
                token = fetch()
            except BaseException as exc:
                slot.error = exc
                raise
            else:
                slot.token, slot.error = token, None
            finally:
                slot.attempts += 1  # counted when done: whoever read the old count waited for this one
            return token
        finally:
            slot.lock.release()

    def forget(self, key: tuple[str, str], token: Token | None = None) -> None:
        """Drop the cached token (a resource server refused it); only that one, if it is given."""
        slot = self._slots.get(key)
        if slot is not None and (token is None or slot.token is token):
            slot.token = None

    def forget_token(self, access_token: str) -> None:
        """Drop every cached slot holding this token (it was revoked)."""
        with self._guard:
            slots = list(self._slots.values())
        for slot in slots:
            if slot.token is not None and slot.token.access_token == access_token:
                slot.token = None
