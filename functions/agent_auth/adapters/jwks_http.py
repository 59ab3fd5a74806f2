"""Key sets fetched over HTTPS for the exchange grant: a trusted issuer's `jwks_uri`, and our own
published `/jwks.json`.

Both go through the strict client of the upstream provider (adapters/http_client.py): https only (http
on loopback for the development server), no redirect followed, no proxy from the environment, 2-second
timeouts and a 64 KiB cap. Caching and the refresh rate are the verifier's (oauth/trusted_issuers.py),
with the injected clock.

Our own keys come from our own published JWKS rather than from KMS: the token function holds only
kms:Sign on the current key (the CDK stack's least privilege), and /jwks.json publishes every key whose
tokens are still in circulation, the rotation overlap included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_auth.errors import DependencyFailure

if TYPE_CHECKING:
    from agent_auth.adapters.http_client import UrllibHttpClient

MAX_JWKS_BYTES = 64 * 1024
TIMEOUT_SECONDS = 2.0


class HttpsJwksFetcher:
    """ports.KeyFetcher over the strict client; every failure is a DependencyFailure (a 503).

    The client (and its TLS context) is made on the first fetch: only an exchange pays for it, never
    the token function's cold start (performance target 3)."""

    def __init__(self, http: UrllibHttpClient | None = None) -> None:
        self._http = http

    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        from agent_auth.oauth.upstream.relying_party import UpstreamUnavailable

        if self._http is None:
            from agent_auth.adapters.http_client import UrllibHttpClient

            self._http = UrllibHttpClient(timeout=TIMEOUT_SECONDS, max_bytes=MAX_JWKS_BYTES)
        try:
            return self._http.get_json(uri)
        except UpstreamUnavailable as exc:
            raise DependencyFailure("jwks_uri") from exc


class PublishedJwks:
    """tokens.validator.PublishedKeys: our own /jwks.json (the validator keeps what it parsed for five
    minutes, and reads again on an unknown kid at most once a minute)."""

    def __init__(self, issuer: str, fetcher: HttpsJwksFetcher | None = None) -> None:
        self._uri = issuer.rstrip("/") + "/jwks.json"
        self._fetcher = fetcher or HttpsJwksFetcher()

    def jwks(self) -> dict[str, Any]:
        return self._fetcher.fetch_jwks(self._uri)
