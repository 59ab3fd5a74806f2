"""agent-auth as a relying party of the upstream OpenID Connect provider (Cognito by default, any issuer
instead; the development provider locally).

The authorization code flow of OpenID Connect Core 1.0 §3.1 with PKCE S256 (RFC 7636): `begin` makes
the authorization request (§3.1.2.1) with a fresh state, nonce and code verifier; `callback` reads the
authorization response (§3.1.2.5-6, and RFC 9207's `iss`); `complete` redeems the code at the token
endpoint with client_secret_basic (§3.1.3.1) and validates the ID token (§3.1.3.7). The provider's
endpoints come from its discovery document (OIDC Discovery 1.0 §4), whose `issuer` must equal the
configured one exactly (§4.3). HTTP goes through the `HttpClient` port (adapters/http_client.py).

Every refusal is an `UpstreamRejected` whose reason is for the audit trail only; a provider that cannot
be reached is an `UpstreamUnavailable` (a DependencyFailure: the resolver answers 503).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard
from urllib.parse import urlencode, urlsplit

from agent_auth.clock import Clock
from agent_auth.errors import DependencyFailure
from agent_auth.oauth.jose import b64url_encode
from agent_auth.oauth.jwt_verifier import (
    ASYMMETRIC_ALGS,
    JwtRejected,
    VerificationKey,
    keys_from_jwks,
    unverified_parts,
    verify_jws,
)

DISCOVERY_PATH = "/.well-known/openid-configuration"
KEY_REFRESH_SECONDS = 60
"""An ID token with a kid we do not know refetches the JWKS at most once a minute (key rotation
without letting forged kids flood the provider)."""
KEY_MAX_AGE_SECONDS = 3600
"""A key the provider withdrew stops being trusted within the hour, however long the process lives."""
MAX_ID_TOKEN_BYTES = 16 * 1024
"""Room for a few hundred group names (Entra sends up to 200 object ids before it switches to overage)."""
MAX_GROUPS = 256
MAX_GROUP_LENGTH = 256
MAX_CALLBACK_VALUE = 2048
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""RFC 7636 §4.1: 43 to 128 unreserved characters."""
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
_REASON_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


class UpstreamUnavailable(DependencyFailure):
    """The provider could not be reached or answered something unusable (network failure, timeout,
    a redirect, an oversized or non-JSON body, a 5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"upstream:{reason}")
        self.reason = reason


class UpstreamRejected(Exception):
    """Why a sign-in through the provider was refused, for the audit trail only (never shown)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpClient(Protocol):
    def get_json(self, url: str) -> dict[str, Any]:
        """The JSON object of a 200 response; UpstreamUnavailable otherwise."""
        ...

    def post_form(
        self, url: str, fields: Mapping[str, str], basic_auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """The JSON object of a 200 response, or of a 400/401 error response (RFC 6749 §5.2);
        UpstreamUnavailable otherwise. `basic_auth` is client_secret_basic (RFC 6749 §2.3.1)."""
        ...


def is_allowed_url(url: str) -> bool:
    """https, or plain http on a loopback host only (the development provider); no credentials in it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS)


def bounded(value: object, limit: int = 40) -> str:
    """A provider-chosen value made safe for an audit reason: short, and only plain characters."""
    return _REASON_UNSAFE.sub("_", str(value)[:limit])


@dataclass(frozen=True)
class UpstreamConfig:
    issuer: str
    """Exactly as the provider's discovery document and ID tokens spell it (no trailing slash added)."""
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    """Our callback, registered at the provider: `{our issuer}/authorize/callback`."""
    scopes: tuple[str, ...] = ("openid", "email")
    allowed_algs: tuple[str, ...] = ("RS256",)
    """ID token algorithms we accept (Cognito signs RS256); only asymmetric ones (RFC 8725 §3.1)."""
    groups_claim: str = "groups"
    """The claim that lists the user's groups (Cognito: `cognito:groups`)."""
    clock_skew: int = 60

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if not is_allowed_url(self.issuer) or parts.query:
            raise ValueError("issuer must be an https URL without query or fragment")
        if not is_allowed_url(self.redirect_uri):
            raise ValueError("redirect_uri must be an https URL")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret are required")
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        if not self.allowed_algs or not set(self.allowed_algs) <= ASYMMETRIC_ALGS:
            raise ValueError("allowed_algs must be asymmetric JWS algorithms")


@dataclass(frozen=True)
class UpstreamRequest:
    """What the caller stores between begin() and complete() (SignIn: id = state, upstream_nonce,
    upstream_verifier)."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class Callback:
    state: str
    code: str = field(repr=False)


@dataclass(frozen=True)
class UpstreamIdentity:
    subject: str
    email: str
    email_verified: bool
    """True when the provider said so; False when it did not say (an explicit false is refused)."""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderMetadata:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    iss_parameter_supported: bool = False
    """RFC 9207 §3: when the provider says it sends `iss` in its authorization response, one without
    it is refused."""


def code_challenge(code_verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    return b64url_encode(hashlib.sha256(code_verifier.encode("ascii")).digest())


class RelyingParty:
    def __init__(self, config: UpstreamConfig, http: HttpClient, clock: Clock) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str, VerificationKey] = {}
        self._keys_fetched_at: float | None = None

    # --- discovery ---------------------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The provider's endpoints, fetched once (OIDC Discovery §4); a failed fetch is not cached."""
        with self._lock:
            if self._metadata is None:
                self._metadata = self._discover()
            return self._metadata

    def _discover(self) -> ProviderMetadata:
        document = self._http.get_json(self._config.issuer.rstrip("/") + DISCOVERY_PATH)
        if document.get("issuer") != self._config.issuer:
            raise UpstreamRejected("discovery:issuer_mismatch")  # §4.3: exactly, or mix-up is possible
        endpoints = [document.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
        if not all(isinstance(e, str) and is_allowed_url(e) for e in endpoints):
            raise UpstreamRejected("discovery:endpoints")
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise UpstreamRejected("discovery:no_s256")
        authorization, token, jwks = (str(e) for e in endpoints)
        return ProviderMetadata(
            authorization, token, jwks, document.get("authorization_response_iss_parameter_supported") is True
        )

    # --- the authorization request -------------------------------------------------------------------

    def begin(self) -> tuple[str, UpstreamRequest]:
        """A fresh request (state, nonce and a 64-character PKCE verifier) and the URL to send the
        browser to. The caller stores the request until the callback."""
        request = UpstreamRequest(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
        )
        return self.authorization_url(request.state, request.nonce, request.code_verifier), request

    def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        """OIDC Core §3.1.2.1, with the S256 challenge of `code_verifier` (RFC 7636 §4.3)."""
        if not _VERIFIER.fullmatch(code_verifier):
            raise ValueError("code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)")
        if not state or not nonce:
            raise ValueError("state and nonce are required")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.client_id,
                "redirect_uri": self._config.redirect_uri,
                "scope": " ".join(self._config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self.metadata().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"  # RFC 6749 §3.1: keep its query

    def callback(self, params: Mapping[str, str]) -> Callback:
        """The authorization response at our redirect URI (OIDC Core §3.1.2.5, §3.1.2.6; RFC 9207).
        `params`: the query's single-valued parameters (a repeated one left out)."""
        error = params.get("error")
        if error:
            raise UpstreamRejected(f"provider_error:{bounded(error)}")
        state, code, iss = params.get("state"), params.get("code"), params.get("iss")
        if not state or not code or len(state) > MAX_CALLBACK_VALUE or len(code) > MAX_CALLBACK_VALUE:
            raise UpstreamRejected("callback:missing_code_or_state")
        if iss is not None and iss != self._config.issuer:
            raise UpstreamRejected("callback:wrong_iss")
        if iss is None and self.metadata().iss_parameter_supported:
            raise UpstreamRejected("callback:missing_iss")
        return Callback(state=state, code=code)

    # --- the token request and the ID token ------------------------------------------------------------

    def complete(self, code: str, *, nonce: str, code_verifier: str) -> UpstreamIdentity:
        """Redeem the code (OIDC Core §3.1.3.1, client_secret_basic) and validate its ID token."""
        response = self._http.post_form(
            self.metadata().token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._config.redirect_uri,
                "code_verifier": code_verifier,
            },
            basic_auth=(self._config.client_id, self._config.client_secret),
        )
        if "error" in response:
            raise UpstreamRejected(f"token_error:{bounded(response['error'])}")
        id_token = response.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamRejected("token_response:no_id_token")
        return self.identity(id_token, nonce=nonce)

    def identity(self, id_token: str, *, nonce: str) -> UpstreamIdentity:
        """OIDC Core §3.1.3.7: signature, alg, iss, aud/azp, exp, iat, nonce; then sub and email."""
        claims = self._verified_claims(id_token)
        config, now = self._config, self._clock.now()
        if claims.get("iss") != config.issuer:
            raise UpstreamRejected("id_token:wrong_issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if config.client_id not in audiences:
            raise UpstreamRejected("id_token:wrong_audience")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != config.client_id:
            raise UpstreamRejected("id_token:wrong_azp")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _is_time(exp) or not _is_time(iat):
            raise UpstreamRejected("id_token:malformed_times")
        if exp <= now - config.clock_skew:
            raise UpstreamRejected("id_token:expired")
        if iat > now + config.clock_skew:
            raise UpstreamRejected("id_token:issued_in_future")
        claimed_nonce = claims.get("nonce")
        if not isinstance(claimed_nonce, str) or not hmac.compare_digest(
            claimed_nonce.encode(), nonce.encode()
        ):
            raise UpstreamRejected("id_token:wrong_nonce")
        return UpstreamIdentity(
            subject=_subject(claims.get("sub")),
            email=_email(claims.get("email")),
            email_verified=_email_verified(claims.get("email_verified")),
            groups=_groups(claims.get(config.groups_claim)),
        )

    def _verified_claims(self, id_token: str) -> dict[str, Any]:
        try:
            header, _ = unverified_parts(id_token, MAX_ID_TOKEN_BYTES)
            if header.get("alg") not in self._config.allowed_algs:
                raise JwtRejected("alg_not_allowed")  # before any key: `none`, HMAC, anything unlisted
            try:
                return verify_jws(id_token, self._signing_keys(), typ=None, max_size=MAX_ID_TOKEN_BYTES)[1]
            except JwtRejected as rejected:
                if rejected.reason != "unknown_kid" or not self._refresh_keys():
                    raise
                return verify_jws(id_token, self._signing_keys(), typ=None, max_size=MAX_ID_TOKEN_BYTES)[1]
        except JwtRejected as rejected:
            raise UpstreamRejected(f"id_token:{rejected.reason}") from rejected

    def _signing_keys(self) -> dict[str, VerificationKey]:
        jwks_uri = self.metadata().jwks_uri
        with self._lock:
            now = self._clock.now()
            if self._keys_fetched_at is None or now - self._keys_fetched_at >= KEY_MAX_AGE_SECONDS:
                self._keys = keys_from_jwks(self._http.get_json(jwks_uri))
                self._keys_fetched_at = now
            return self._keys

    def _refresh_keys(self) -> bool:
        """Refetch the JWKS for an unknown kid, unless it was fetched less than a minute ago."""
        jwks_uri = self.metadata().jwks_uri
        with self._lock:
            now = self._clock.now()
            if self._keys_fetched_at is not None and now - self._keys_fetched_at < KEY_REFRESH_SECONDS:
                return False
            self._keys = keys_from_jwks(self._http.get_json(jwks_uri))
            self._keys_fetched_at = now
            return True


def _is_time(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**11


def _subject(value: object) -> str:
    """OIDC Core §2: `sub` is required, at most 255 ASCII characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 255 or not value.isascii():
        raise UpstreamRejected("id_token:malformed_sub")
    return value


def _email(value: object) -> str:
    """Users are named by email in the policy, so a sign-in without one cannot be authorized."""
    if not isinstance(value, str) or not _EMAIL.fullmatch(value):
        raise UpstreamRejected("id_token:missing_email")
    return value


def _email_verified(value: object) -> bool:
    # Some providers send the string "true" (OIDC Core §5.1 says boolean); both spellings of false refuse.
    if value is None:
        return False
    if value is True or value == "true":
        return True
    raise UpstreamRejected("id_token:email_not_verified")


def _groups(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_GROUPS
        or not all(isinstance(g, str) and 0 < len(g) <= MAX_GROUP_LENGTH for g in value)
    ):
        raise UpstreamRejected("id_token:malformed_groups")
    return tuple(value)
