"""Signing keys that rotate without a redeploy: which key signs now, which are published, when one may go.

The key set is one item (KEY_SET_ITEM in the agents table) that `agent-auth keys rotate` writes; the token
and well-known functions read it and keep it for KEY_CACHE_SECONDS per execution environment. Every time
in it is absolute, so each environment switches keys by its own clock, not when its cache happens to expire.

One rotation started at t0 with an overlap O (product.md, "Token lifecycle"):

    t0                      the new key is in the set: /jwks.json publishes it, nothing signs with it
    t0 + O                  it signs; the old one stops signing
    t0 + O + C + L + skew   the last token the old key signed has expired (L: the token lifetime, C: the cache
                            below, for clocks that disagree): the old key is no longer published, and
                            `keys retire` may disable it in KMS

A verifier learns of the new key at the latest C + JWKS_MAX_AGE after t0 (our cache, then its HTTP cache):
O must exceed that, and JWKS_MAX_AGE stays below O / 2, so MIN_OVERLAP is 2 * JWKS_MAX_AGE + C.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from agent_auth.clock import Clock
from agent_auth.errors import DependencyFailure

KEY_SET_ITEM = "keys#signing"
"""The key set's partition key in the agents table; the well-known function may read this item only."""
KEY_CACHE_SECONDS = 60
"""How long an execution environment keeps the key set before reading it again."""
JWKS_MAX_AGE = 300
"""The Cache-Control max-age of /jwks.json and the discovery documents."""
CLOCK_SKEW = 60
"""What verifiers allow past `exp` (security.md: around 60 s)."""
MIN_OVERLAP = 2 * JWKS_MAX_AGE + KEY_CACHE_SECONDS
DEFAULT_OVERLAP = 3600

KeyState = Literal["pending", "active", "previous", "unpublished", "retired"]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key_arn: str
    alg: str
    activates_at: int
    """When it starts signing (0 for the deployment's first key)."""
    created_at: int = 0
    alias: str | None = None
    retires_at: int | None = None
    """Set when a successor is scheduled: from then on the key is not published (its last token expired)."""
    retired: bool = False
    """Disabled in KMS by `keys retire`."""
    managed: bool = False
    """Created by `keys rotate` (deletion is scheduled when it retires); False for the deployment's own
    key (the stack's, or the development server's), which is only disabled."""


@dataclass(frozen=True)
class KeySet:
    keys: tuple[SigningKey, ...]
    version: int = 0
    """Counts the writes of the item: each write is conditional on the version it read."""

    @classmethod
    def initial(cls, key_arn: str, alg: str, kid: str) -> KeySet:
        """The deployment's own key (SIGNING_KEY_ARN), before any rotation was written."""
        return cls((SigningKey(kid=kid, key_arn=key_arn, alg=alg, activates_at=0),))

    def signing(self, now: float) -> SigningKey:
        """The key that signs at `now`: the latest one already active."""
        ready = [k for k in self.keys if k.activates_at <= now and not k.retired]
        if not ready:
            raise DependencyFailure("no_signing_key")
        return max(ready, key=lambda k: k.activates_at)

    def published(self, now: float) -> tuple[SigningKey, ...]:
        """Every key a token in circulation may name, and the next one before it signs."""
        return tuple(k for k in self.keys if not k.retired and (k.retires_at is None or now < k.retires_at))

    def by_kid(self, kid: object) -> SigningKey | None:
        return next((k for k in self.keys if k.kid == kid and not k.retired), None)

    def pending(self, now: float) -> SigningKey | None:
        return next((k for k in self.keys if k.activates_at > now and not k.retired), None)

    def state(self, key: SigningKey, now: float) -> KeyState:
        if key.retired:
            return "retired"
        if key.activates_at > now:
            return "pending"
        if key.retires_at is not None and now >= key.retires_at:
            return "unpublished"
        return "active" if key == self.signing(now) else "previous"

    def rotated(self, new: SigningKey, now: float, token_lifetime: int) -> KeySet:
        """`new` signs from its activates_at; the key signing now stays published until its last token
        expired."""
        current = self.signing(now)
        retires_at = new.activates_at + KEY_CACHE_SECONDS + token_lifetime + CLOCK_SKEW
        keys = tuple(replace(k, retires_at=retires_at) if k == current else k for k in self.keys)
        return KeySet((*keys, new), self.version + 1)

    def retirable(self, now: float) -> tuple[SigningKey, ...]:
        """Keys no longer published and not yet retired: every token they signed has expired."""
        return tuple(
            k for k in self.keys if not k.retired and k.retires_at is not None and now >= k.retires_at
        )

    def with_retired(self, kids: set[str]) -> KeySet:
        return KeySet(
            tuple(replace(k, retired=True) if k.kid in kids else k for k in self.keys), self.version + 1
        )


class KeySetReader(Protocol):
    def get_key_set(self) -> KeySet | None:
        """The stored key set; None before the first rotation."""
        ...


class CachedKeySet:
    """The key set, read at most once per KEY_CACHE_SECONDS per execution environment (performance target
    1: a token costs one DynamoDB read, plus one every C seconds, never one per request)."""

    def __init__(
        self,
        reader: KeySetReader,
        fallback: Callable[[], KeySet],
        clock: Clock,
        ttl: int = KEY_CACHE_SECONDS,
    ) -> None:
        self._reader = reader
        self._fallback = fallback
        self._clock = clock
        self._ttl = ttl
        self._value: KeySet | None = None
        self._read_at = 0.0

    def get(self) -> KeySet:
        now = self._clock.now()
        if self._value is None or not 0 <= now - self._read_at < self._ttl:
            self._value = self._reader.get_key_set() or self._fallback()
            self._read_at = now
        return self._value
