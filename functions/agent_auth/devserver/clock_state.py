"""The development server's clock, seen from another process (the CLI's `--dev`).

`POST /_dev/clock` moves the server's clock; commands that judge expiry (`agent-auth requests`) must use
the same time, so they ask the server for its offset once, when the command starts.
"""

from __future__ import annotations

import json
import time
import urllib.request


class DevStateClock:
    def __init__(self, issuer: str, timeout: float = 2.0) -> None:
        self.offset = 0.0
        try:
            with urllib.request.urlopen(f"{issuer}/_dev/clock", timeout=timeout) as response:  # noqa: S310 (our own loopback server)
                self.offset = float(json.loads(response.read())["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not answering: dev_target reports that when it reads the policy

    def now(self) -> float:
        return time.time() + self.offset
