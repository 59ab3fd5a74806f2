"""The development OpenID provider `agent-auth dev` serves under /_dev/oidc. Development only.

A small OpenID Connect provider (Core 1.0 §3.1, the authorization code flow; Discovery 1.0 §4) so the
same relying-party code that talks to Cognito or any other issuer on AWS (oauth/upstream/) talks to a
real provider over HTTP locally. There is no password: whoever types an email address on the sign-in
page is that user, with the groups typed beside it. What it still checks, as a real provider would,
is what the relying party's correctness depends on:

- one registered client (id, secret, redirect URI); an unknown client or redirect URI gets an error
  page, never a redirect (RFC 6749 §4.1.2.1);
- PKCE S256 only (RFC 7636 §4.6); codes are single use, bound to client, redirect URI, challenge,
  nonce, user and groups, and expire after 60 seconds of the injected clock (POST /_dev/clock moves it);
- client_secret_basic or client_secret_post at the token endpoint, never both (RFC 6749 §2.3);
- ID tokens signed RS256 with a key generated at start, named by `kid` in the published JWKS;
- RFC 9207 `iss` in every authorization response.

Handlers have the dev server's shape (`handler(event, context) -> proxy result`), like local_aws.dev_routes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_auth.clock import Clock
from agent_auth.errors import InvalidRequest
from agent_auth.oauth.jose import b64url_encode, public_jwk_from_der
from agent_auth.oauth.tokens.access_token import sign_jwt
from agent_auth.web.forms import parse_form
from agent_auth.web.html import STYLE, page_headers
from agent_auth.web.request import MalformedEvent, Request, Response

PREFIX = "/_dev/oidc"
CODE_SECONDS = 60
ID_TOKEN_SECONDS = 300
MAX_PENDING_CODES = 1000
MAX_PARAM_LENGTH = 512
MAX_GROUPS = 50
MAX_GROUP_LENGTH = 128
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
"""RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is always 43 characters."""
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
JSON_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Handler = Callable[[dict[str, Any], object], dict[str, Any]]


def dev_issuer(base_url: str) -> str:
    """The development provider's issuer for a dev server at `base_url`."""
    return base_url.rstrip("/") + PREFIX


def oidc_routes(
    base_url: str, clock: Clock, *, client_id: str, client_secret: str, redirect_uri: str
) -> dict[str, Handler]:
    """The provider's routes by exact path, for the dev server to mount (one RSA key per call)."""
    return DevOidcProvider(
        base_url, clock, client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri
    ).routes()


@dataclass(frozen=True)
class _AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    state: str | None
    nonce: str | None


@dataclass(frozen=True)
class _IssuedCode:
    request: _AuthorizationRequest
    user: str
    groups: tuple[str, ...]
    expires_at: int


class _NoRedirect(Exception):
    """The client or redirect URI is not the registered one: show an error page (RFC 6749 §4.1.2.1)."""


class _RedirectWithError(Exception):
    """RFC 6749 §4.1.2.1: any other problem goes back to the (registered) redirect URI as `error`."""

    def __init__(self, error: str, state: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.state = state


class _TokenError(Exception):
    """RFC 6749 §5.2, with a fixed description."""

    def __init__(self, error: str, description: str, status: int = 400, basic: bool = False) -> None:
        super().__init__(error)
        self.error, self.description, self.status, self.basic = error, description, status, basic


class _RsaSigner:
    """The provider's own RS256 key (a Signer for sign_jwt), generated in process."""

    alg = "RS256"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self._key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.kid = b64url_encode(hashlib.sha256(der).digest()[:16])
        self.jwk = public_jwk_from_der(der, self.alg, self.kid)

    def sign(self, signing_input: bytes) -> bytes:
        return self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


class DevOidcProvider:
    def __init__(
        self, base_url: str, clock: Clock, *, client_id: str, client_secret: str, redirect_uri: str
    ) -> None:
        self.issuer = dev_issuer(base_url)
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        self._clock = clock
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._signer = _RsaSigner()
        self._lock = threading.Lock()
        self._codes: dict[str, _IssuedCode] = {}

    def routes(self) -> dict[str, Handler]:
        return {
            f"{PREFIX}/.well-known/openid-configuration": self.discovery,
            f"{PREFIX}/jwks.json": self.jwks,
            f"{PREFIX}/authorize": self.authorize,
            f"{PREFIX}/token": self.token,
        }

    # --- metadata -----------------------------------------------------------------------------------

    def discovery(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        """OIDC Discovery 1.0 §3."""
        if event.get("httpMethod") != "GET":
            return _method_not_allowed("GET")
        return Response.json(
            200,
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks.json",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [self._signer.alg],
                "scopes_supported": ["openid", "email"],
                "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
            },
        ).to_proxy_result()

    def jwks(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        if event.get("httpMethod") != "GET":
            return _method_not_allowed("GET")
        return Response.json(200, {"keys": [self._signer.jwk]}).to_proxy_result()

    # --- the authorization endpoint: the sign-in page and its form ------------------------------------

    def authorize(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        method = event.get("httpMethod")
        if method not in ("GET", "POST"):
            return _method_not_allowed("GET, POST")
        try:
            request = Request.from_event(event)
            if method == "GET":
                auth = self._authorization_request(request.query_param)
                return _page(200, auth, message="")
            return self._sign_in(request)
        except _NoRedirect:
            return _error_page(400, "This sign-in request is not from the registered client.")
        except InvalidRequest:
            return _error_page(400, "The sign-in form could not be read.")
        except _RedirectWithError as refused:
            return self._redirect({"error": refused.error, "state": refused.state})
        except MalformedEvent:
            return _error_page(400, "The sign-in request could not be read.")

    def _authorization_request(self, value: Callable[[str], str | None]) -> _AuthorizationRequest:
        """OIDC Core §3.1.2.2, as the GET and again as the form's hidden fields carry it."""
        if value("client_id") != self._client_id or value("redirect_uri") != self._redirect_uri:
            raise _NoRedirect
        state, nonce = value("state"), value("nonce")
        if any(v is not None and len(v) > MAX_PARAM_LENGTH for v in (state, nonce)):
            raise _RedirectWithError("invalid_request", None)
        if value("response_type") != "code":
            raise _RedirectWithError("unsupported_response_type", state)
        scope = value("scope") or ""
        if "openid" not in scope.split() or len(scope) > MAX_PARAM_LENGTH:
            raise _RedirectWithError("invalid_scope", state)
        challenge = value("code_challenge")
        if value("code_challenge_method") != "S256" or not challenge or not _CHALLENGE.fullmatch(challenge):
            raise _RedirectWithError("invalid_request", state)  # RFC 7636 §4.4.1: PKCE S256 required
        return _AuthorizationRequest(self._client_id, self._redirect_uri, scope, challenge, state, nonce)

    def _sign_in(self, request: Request) -> dict[str, Any]:
        origin = request.header("origin")
        # `null` is what browsers send from a page with Referrer-Policy: no-referrer (Fetch standard).
        if origin not in (None, "null", self._origin):
            return _error_page(403, "The sign-in form must be posted from this page.")
        form = parse_form(request)
        auth = self._authorization_request(form.get)
        user = (form.get("username") or "").strip()
        groups = tuple(g.strip() for g in (form.get("groups") or "").split(",") if g.strip())
        if len(user) > 254 or not user.isprintable() or not _EMAIL.fullmatch(user):
            return _page(400, auth, message="Enter an email address.", user=user, groups=", ".join(groups))
        if len(groups) > MAX_GROUPS or not all(
            len(g) <= MAX_GROUP_LENGTH and g.isprintable() for g in groups
        ):
            typed = (form.get("groups") or "")[:2000]
            return _page(400, auth, message="Enter group names separated by commas.", user=user, groups=typed)
        code = secrets.token_urlsafe(32)
        issued = _IssuedCode(auth, user, groups, int(self._clock.now()) + CODE_SECONDS)
        with self._lock:
            now = int(self._clock.now())
            for key in [k for k, c in self._codes.items() if c.expires_at <= now]:
                del self._codes[key]
            if len(self._codes) >= MAX_PENDING_CODES:
                return _error_page(503, "Too many sign-ins in progress; try again in a minute.")
            self._codes[_hash(code)] = issued
        return self._redirect({"code": code, "state": auth.state})

    def _redirect(self, params: dict[str, str | None]) -> dict[str, Any]:
        query = urlencode({k: v for k, v in {**params, "iss": self.issuer}.items() if v is not None})
        separator = "&" if "?" in self._redirect_uri else "?"
        return {
            "statusCode": 302,
            "headers": {
                "Location": f"{self._redirect_uri}{separator}{query}",
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
            "body": "",
        }

    # --- the token endpoint ---------------------------------------------------------------------------

    def token(self, event: dict[str, Any], context: object) -> dict[str, Any]:
        if event.get("httpMethod") != "POST":
            return _method_not_allowed("POST")
        try:
            return Response.json(200, self._redeem(Request.from_event(event)), JSON_HEADERS).to_proxy_result()
        except _TokenError as refused:
            headers = dict(JSON_HEADERS)
            if refused.basic:
                headers["WWW-Authenticate"] = 'Basic realm="dev-oidc", error="invalid_client"'
            body = {"error": refused.error, "error_description": refused.description}
            return Response.json(refused.status, body, headers).to_proxy_result()
        except (InvalidRequest, MalformedEvent):
            body = {"error": "invalid_request", "error_description": "Malformed request"}
            return Response.json(400, body, JSON_HEADERS).to_proxy_result()

    def _redeem(self, request: Request) -> dict[str, Any]:
        """RFC 6749 §4.1.3 and RFC 7636 §4.6; the answer is OIDC Core §3.1.3.3."""
        form = parse_form(request)
        self._authenticate(request.header("authorization"), form.get("client_id"), form.get("client_secret"))
        if form.get("grant_type") != "authorization_code":
            raise _TokenError("unsupported_grant_type", "Only authorization_code is supported")
        code, verifier = form.get("code"), form.get("code_verifier")
        if not code or not verifier:
            raise _TokenError("invalid_request", "code and code_verifier are required")
        with self._lock:
            issued = self._codes.pop(_hash(code), None)  # single use: gone whatever happens next
        now = int(self._clock.now())
        if issued is None or issued.expires_at <= now:
            raise _TokenError("invalid_grant", "Unknown, used or expired code")
        if form.get("redirect_uri") != issued.request.redirect_uri:
            raise _TokenError("invalid_grant", "redirect_uri does not match the authorization request")
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest()), issued.request.code_challenge
        ):
            raise _TokenError("invalid_grant", "code_verifier does not match the code challenge")
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": b64url_encode(hashlib.sha256(issued.user.lower().encode()).digest()[:16]),
            "aud": issued.request.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_SECONDS,
            "email": issued.user,
            "email_verified": True,
            # RFC 7519 §4.1.7: lets a token exchange that trusts this provider refuse a replay.
            "jti": secrets.token_urlsafe(16),
        }
        if issued.request.nonce is not None:
            claims["nonce"] = issued.request.nonce
        if issued.groups:
            claims["groups"] = list(issued.groups)
        return {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": ID_TOKEN_SECONDS,
            "scope": issued.request.scope,
            "id_token": sign_jwt(self._signer, claims, typ="JWT"),
        }

    def _authenticate(self, header: str | None, client_id: str | None, client_secret: str | None) -> None:
        """client_secret_basic (RFC 6749 §2.3.1, form-encoded id and secret) or client_secret_post."""
        basic = header is not None and header[:6].lower() == "basic "
        if basic and client_secret is not None:
            raise _TokenError("invalid_request", "Use one client authentication method")
        if basic:
            try:
                decoded = base64.b64decode(str(header)[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise _TokenError("invalid_client", "Client authentication failed", 401, True) from exc
            raw_id, _, raw_secret = decoded.partition(":")
            presented_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
            if client_id is not None and client_id != presented_id:
                raise _TokenError("invalid_request", "client_id does not match the authenticated client")
        else:
            presented_id, secret = client_id or "", client_secret or ""
        known = hmac.compare_digest(presented_id.encode(), self._client_id.encode())
        if not (hmac.compare_digest(secret.encode(), self._client_secret.encode()) and known):
            raise _TokenError("invalid_client", "Client authentication failed", 401, basic)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _method_not_allowed(allowed: str) -> dict[str, Any]:
    body = {"error": "invalid_request", "error_description": "Method not allowed"}
    return Response.json(405, body, {"Allow": allowed}).to_proxy_result()


_SIGN_IN_PAGE_HEADERS = page_headers(form_targets=("http:", "https:"))
"""CSP Level 3 applies `form-action` to every redirect after the sign-in form's POST: to our callback
(same origin), and from there, when the user's consent is remembered, straight to the agent's redirect
URI, on an origin this development provider cannot know. The development provider's own page allows
any http(s) target; the server's own pages (consent, approval) keep naming the one origin they send to."""


def _html(status: int, title: str, content: str) -> dict[str, Any]:
    body = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{content}</body></html>"
    )
    return Response(status, body, dict(_SIGN_IN_PAGE_HEADERS)).to_proxy_result()


def _error_page(status: int, message: str) -> dict[str, Any]:
    return _html(status, "Sign-in failed", f"<p>{escape(message)}</p>")


def _page(
    status: int, auth: _AuthorizationRequest, *, message: str, user: str = "", groups: str = ""
) -> dict[str, Any]:
    """The sign-in form (product.md): `username`, optional comma-separated `groups`, "Sign in".
    `action="authorize"` resolves to this page's own path, without the GET's query."""
    hidden = {
        "response_type": "code",
        "client_id": auth.client_id,
        "redirect_uri": auth.redirect_uri,
        "scope": auth.scope,
        "code_challenge": auth.code_challenge,
        "code_challenge_method": "S256",
        "state": auth.state,
        "nonce": auth.nonce,
    }
    fields = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in hidden.items() if v
    )
    notice = f'<p role="alert">{escape(message)}</p>' if message else ""
    content = (
        "<p>Development sign-in: no password. Whoever you name here is who the ID token says you are.</p>"
        f'{notice}<form method="post" action="authorize">{fields}'
        '<p><label>Email address<br><input type="email" name="username" required autofocus '
        f'value="{escape(user)}"></label></p>'
        '<p><label>Groups (optional, comma-separated)<br><input type="text" name="groups" '
        f'value="{escape(groups)}"></label></p>'
        '<button type="submit">Sign in</button></form>'
    )
    return _html(status, "Sign in", content)
