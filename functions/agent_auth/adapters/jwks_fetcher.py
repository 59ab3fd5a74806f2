"""Fetching the JWKS of clients registered with `jwks_uri`, cached per execution environment."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from agent_auth.errors import DependencyFailure

MAX_JWKS_BYTES = 64 * 1024
CACHE_SECONDS = 300
MIN_REFRESH_SECONDS = 30
"""A kid we do not know triggers at most one refetch per half minute, so it cannot be used to flood."""


class HttpKeyFetcher:
    def __init__(self, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._cache.get(uri)
        if (
            cached
            and (now - cached[0] < CACHE_SECONDS)
            and not (refresh and now - cached[0] > MIN_REFRESH_SECONDS)
        ):
            return cached[1]
        request = urllib.request.Request(uri, headers={"Accept": "application/json"})  # noqa: S310 (https, from policy)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = response.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            jwks = json.loads(body)
            if not isinstance(jwks, dict):
                raise ValueError("JWKS is not an object")
        except (OSError, ValueError) as exc:
            if cached:
                return cached[1]  # keep serving the last good key set through a blip
            raise DependencyFailure("jwks_uri") from exc
        self._cache[uri] = (now, jwks)
        return jwks
