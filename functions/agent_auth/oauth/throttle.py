"""Refusing brute force at client authentication (security.md, "Load and faults").

Failed client authentications are counted per agent and per source address (the address API Gateway
saw, requestContext.identity.sourceIp, never a header) in fixed windows. Past a limit the answer is 429
`temporarily_unavailable` with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3) instead of 401.

Why it is built this way:
- Counters are written only when authentication fails, so a success costs nothing more than the one
  agent read it makes anyway (performance target 1). The only state a success must see, "this agent
  is locked", is mirrored onto the agent item once, when its count reaches the limit.
- While an agent is locked every attempt for it is refused, the right secret too: a 200 among the
  429s would hand a brute-forcer the secret.
- A known and an unknown client make the same calls at every step (performance target 8): a refused
  attempt for a locked agent still counts as a failure; an unknown client's failure writes a fixed decoy
  where a known one writes its agent counter (an unknown name keys no item: it is input nobody vouched
  for); and where an agent's count reaches the limit and it gets locked, an unknown name's stand-in, the
  source count, reaching the same limit locks the decoy.
- The source limit defaults to the agent limit. Then from one address an attacker gets the first 429 at
  the same attempt whether a name exists or not; a higher source limit would let one address tell a
  locked agent from a name that does not exist. Success never reads the source counter, so a low limit
  costs well-behaved clients nothing. Many addresses together can still lock an agent for a window (and
  so learn it exists): per-agent lockout trades that for stopping the guessing; API Gateway's throttling
  bounds the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from agent_auth.clock import Clock
from agent_auth.errors import InvalidClient, TooManyFailures
from agent_auth.records import Agent

DEFAULT_AGENT_FAILURES = 10
DEFAULT_SOURCE_FAILURES = 10
DEFAULT_WINDOW = 300


@dataclass(frozen=True)
class ThrottleLimits:
    agent_failures: int = DEFAULT_AGENT_FAILURES
    """Failures allowed per agent in a window; at this count the agent is locked until the window ends."""
    source_failures: int = DEFAULT_SOURCE_FAILURES
    """Failures allowed per source address in a window; every further failure from it is a 429."""
    window: int = DEFAULT_WINDOW
    """Seconds; windows are fixed (aligned to the epoch), so Retry-After is the time to the window's end."""


@dataclass(frozen=True)
class FailureCounts:
    source: int
    agent: int
    """For an unknown client, the decoy's count: meaningless, and never compared."""


class FailureCounters(Protocol):
    """The port: counters written only on failure, each returning the count it reached."""

    def count_source_failure(self, source: str, window_end: int) -> int:
        """One more failure from `source` in the window ending at `window_end`; the new count. Also the
        seam for other refusals that should count against an address (approval links, bad signatures)."""
        ...

    def count_failure(self, *, source: str, client_id: str | None, window_end: int) -> FailureCounts:
        """One more failure for the source and for the agent; `client_id` None (a client that does not
        exist) writes a fixed decoy instead, at the cost of an agent's counter and an agent's read."""
        ...

    def lock(self, client_id: str | None, until: int) -> None:
        """Record on the agent item (None: on the decoy) that it is locked until `until`."""
        ...

    def source_count(self, source: str, window_end: int) -> int:
        """The failures counted from `source` in the window ending at `window_end` (one read)."""
        ...


class FailureThrottle:
    def __init__(self, counters: FailureCounters, clock: Clock, limits: ThrottleLimits | None = None) -> None:
        self._counters = counters
        self._clock = clock
        self._limits = limits or ThrottleLimits()

    def is_locked(self, agent: Agent) -> bool:
        """Checked after the agent's read and before anything is compared or verified."""
        return agent.auth_locked_until is not None and agent.auth_locked_until > self._clock.now()

    def refuse(
        self, error: InvalidClient, *, agent: Agent | None, locked: bool, source: str
    ) -> InvalidClient:
        """Count a failed authentication; the error to answer with: `error` itself, or a 429.
        `agent`: the agent the client claimed to be, if it exists; `locked`: it was found locked."""
        now = self._clock.now()
        window_end = self._window_end(now)
        name = agent.client_id if agent else None
        counts = self._counters.count_failure(source=source, client_id=name, window_end=window_end)
        # Lock once, when the count reaches the limit. An unknown name has no count of its own: the
        # source's stands in, and the decoy is locked, so the step costs the same.
        limit = self._limits.agent_failures
        if (counts.agent >= limit and not locked) if agent else counts.source == limit:
            self._counters.lock(name, window_end)
        if agent is not None and locked:
            until = agent.auth_locked_until or window_end
            return TooManyFailures(
                reason="too_many_failures:agent", retry_after=math.ceil(until - now), known_client=name
            )
        if counts.source > self._limits.source_failures:
            return TooManyFailures(
                reason="too_many_failures:source", retry_after=math.ceil(window_end - now), known_client=name
            )
        return error

    def source_failure(self, source: str) -> int | None:
        """Count a failure from `source`; the seconds it must wait when past its limit, else None.
        For any endpoint whose failures should count against the address (approval links)."""
        now = self._clock.now()
        window_end = self._window_end(now)
        if self._counters.count_source_failure(source, window_end) > self._limits.source_failures:
            return max(1, math.ceil(window_end - now))
        return None

    def source_waiting(self, source: str) -> int | None:
        """The seconds `source` must still wait, when it is past its limit; else None. A read, for
        endpoints that refuse a blocked source before doing costly work (approval links: VerifyMac)."""
        now = self._clock.now()
        window_end = self._window_end(now)
        if self._counters.source_count(source, window_end) > self._limits.source_failures:
            return max(1, math.ceil(window_end - now))
        return None

    def _window_end(self, now: float) -> int:
        window = self._limits.window
        return (int(now) // window + 1) * window
