"""Time, injected: every expiry check reads a Clock so tests can move time instead of waiting."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock that only moves when told to; for tests and the development server's time travel."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


_default: Clock = SystemClock()


def default_clock() -> Clock:
    """The clock handlers use: the system clock, except under `agent-auth dev`, which can move it."""
    return _default


def set_default_clock(clock: Clock) -> None:
    global _default  # noqa: PLW0603 (one process-wide clock, set once by the development server)
    _default = clock


class OffsetClock:
    """The system clock plus an offset the development server can advance, to test expiry end to end."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset
