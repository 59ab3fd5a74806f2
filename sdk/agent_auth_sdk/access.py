"""Waiting for a just-in-time access request, as a CIBA poll-mode client (CIBA §7.3, §11).

Polls the token endpoint no faster than the server's `interval`; `slow_down` adds 5 seconds to it for
good (as RFC 8628 §3.5 says); `access_denied` and `expired_token` end the wait with an exception.
Progress goes to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from agent_auth_sdk.errors import AgentAuthError, OAuthError, RequestExpired
from agent_auth_sdk.tokens import Token

if TYPE_CHECKING:
    from agent_auth_sdk.agent import AgentAuth

DEFAULT_INTERVAL = 5
SLOW_DOWN_STEP = 5


@dataclass
class AccessRequest:
    agent: AgentAuth
    request_id: str
    scope: str
    status: str
    interval: int
    expires_at: float
    _clock: Callable[[], float]
    _sleep: Callable[[float], None]

    @classmethod
    def from_response(
        cls,
        agent: AgentAuth,
        scope: str,
        body: Any,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> AccessRequest:
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
            raise AgentAuthError("The access request response has no request_id")
        interval = body.get("interval")
        expires_in = body.get("expires_in")
        return cls(
            agent=agent,
            request_id=body["request_id"],
            scope=scope,
            status=str(body.get("status", "pending")),
            interval=interval if isinstance(interval, int) and interval > 0 else DEFAULT_INTERVAL,
            expires_at=clock() + (expires_in if isinstance(expires_in, int | float) else 3600),
            _clock=clock,
            _sleep=sleep,
        )

    def wait(self, timeout: float | None = None, progress: bool | None = None) -> Token:
        """Block until the request is decided: the elevated token, or `AccessDenied` / `RequestExpired`.

        `timeout` (seconds) gives up earlier with `RequestExpired`; `progress` defaults to "stderr is a
        terminal"."""
        stream: TextIO | None = sys.stderr if (progress is None and _is_tty()) or progress else None
        started = self._clock()
        deadline = min(self.expires_at, started + timeout) if timeout is not None else self.expires_at
        first = self.status == "approved"  # auto-approved: the token is there at once
        try:
            while True:
                if not first:
                    if self._clock() + self.interval > deadline:
                        raise RequestExpired("expired_token", "Gave up waiting for a decision")
                    self._sleep(self.interval)
                first = False
                try:
                    token = self.agent.poll(self.request_id)
                except OAuthError as exc:
                    if exc.error == "slow_down":
                        self.interval += SLOW_DOWN_STEP
                    elif exc.error != "authorization_pending":
                        self.status = "denied" if exc.error == "access_denied" else "ended"
                        raise
                    if stream is not None:
                        waited = int(self._clock() - started)
                        stream.write(f"\rwaiting for approval of {self.scope} ({self.request_id}): {waited}s")
                        stream.flush()
                    continue
                self.status = "approved"
                return token
        finally:
            if stream is not None:
                stream.write(f"\r{self.request_id}: {self.status}\n")
                stream.flush()


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
