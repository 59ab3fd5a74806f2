"""The issuer's published keys (JWKS), fetched once and kept; an unknown `kid` refreshes them at most
once a minute, so a flood of tokens with made-up kids cannot turn into a flood of fetches."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import Algorithm

from agent_auth_sdk.errors import AgentAuthError
from agent_auth_sdk.transport import Transport

ALLOWED_ALGS = frozenset({"RS256", "PS256", "ES256", "EdDSA"})
"""Asymmetric only: an HMAC "key" taken from a JWKS would let anyone who read the JWKS sign."""
MIN_REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class PublicKey:
    kid: str
    alg: str
    """Pinned: a token signed with another algorithm is refused even if the key could check it."""
    key: Any
    algorithm: Algorithm


def parse_jwks(document: Any) -> dict[str, PublicKey]:
    """Usable signing keys by kid; anything else (no kid, `use` not sig, HMAC, private) is skipped."""
    keys = document.get("keys") if isinstance(document, dict) else None
    parsed: dict[str, PublicKey] = {}
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if jwk.get("use", "sig") != "sig" or "d" in jwk or jwk.get("kty") == "oct":
            continue
        try:
            loaded = jwt.PyJWK(jwk)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        if loaded.algorithm_name not in ALLOWED_ALGS:
            continue
        parsed[jwk["kid"]] = PublicKey(jwk["kid"], loaded.algorithm_name, loaded.key, loaded.Algorithm)
    return parsed


class KeySet:
    def __init__(
        self,
        jwks_uri: Callable[[], str],
        http: Transport,
        clock: Callable[[], float] = time.monotonic,
        min_refresh: float = MIN_REFRESH_SECONDS,
    ) -> None:
        self._jwks_uri = jwks_uri
        self._http = http
        self._clock = clock
        self._min_refresh = min_refresh
        self._keys: dict[str, PublicKey] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0
        """How many times the JWKS was fetched (for tests and `make bench`)."""

    @property
    def ready(self) -> bool:
        """Keys are at hand: verifying needs no network call (unless the token names an unknown kid)."""
        return bool(self._keys)

    def load(self) -> None:
        """The first fetch; its failure is an error (not a refused token): the API cannot verify yet."""
        with self._lock:
            if self._fetched_at is None:
                self._fetch(raise_errors=True)

    def get(self, kid: str) -> PublicKey | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            due = self._fetched_at is None or self._clock() - self._fetched_at >= self._min_refresh
            if key is None and due:
                # A rotation we have not seen yet, perhaps. Without any key yet, a failure is an error.
                self._fetch(raise_errors=not self._keys)
                key = self._keys.get(kid)
        return key

    def _fetch(self, raise_errors: bool) -> None:
        self._fetched_at = self._clock()  # failures count too: the next try is a minute away
        self.fetches += 1
        try:
            answer = self._http.get(self._jwks_uri())
            if answer.status != 200:
                raise AgentAuthError(f"The JWKS answered {answer.status}")
            keys = parse_jwks(answer.json())
        except AgentAuthError:
            if raise_errors:
                raise
            return  # keep the keys we have
        self._keys = keys
