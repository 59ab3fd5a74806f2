"""agent-auth as a relying party of the upstream OpenID provider (OIDC Core §3.1.2-3.1.3.7, Discovery
§4.3, RFC 7636, RFC 9207), against a fake HttpClient and a local RSA key."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_auth.clock import FixedClock
from agent_auth.errors import DependencyFailure
from agent_auth.oauth import jose
from agent_auth.oauth.upstream.relying_party import (
    RelyingParty,
    UpstreamConfig,
    UpstreamIdentity,
    UpstreamRejected,
    UpstreamUnavailable,
    code_challenge,
)
from tests.support import ClientKey, rsa_key

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example"
DISCOVERY = f"{ISSUER}/.well-known/openid-configuration"
JWKS = f"{ISSUER}/.well-known/jwks.json"
TOKEN = "https://example.auth.eu-west-1.amazoncognito.com/oauth2/token"
AUTHORIZE = "https://example.auth.eu-west-1.amazoncognito.com/oauth2/authorize"
CLIENT_ID = "agent-auth-client"
SECRET = "s3cret+/="
CALLBACK = "https://auth.example.com/authorize/callback"
NOW = 1_800_000_000
NONCE = "n-0S6_WzA2Mj"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
KEY = rsa_key(kid="key-1")


class FakeProvider:
    """The provider's three URLs, as an HttpClient: records what the relying party asked for."""

    def __init__(self) -> None:
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": AUTHORIZE,
            "token_endpoint": TOKEN,
            "jwks_uri": JWKS,
        }
        self.jwks: dict[str, Any] = {"keys": [KEY.jwk]}
        self.token_response: dict[str, Any] = {}
        self.fetches: list[str] = []
        self.posts: list[tuple[str, dict[str, str], tuple[str, str] | None]] = []
        self.failing: set[str] = set()

    def get_json(self, url: str) -> dict[str, Any]:
        self.fetches.append(url)
        if url in self.failing:
            raise UpstreamUnavailable("timeout")
        documents = {DISCOVERY: self.discovery, JWKS: self.jwks}
        if url not in documents:
            raise UpstreamUnavailable("http_404")
        return copy.deepcopy(documents[url])

    def post_form(self, url: str, fields: Any, basic_auth: tuple[str, str] | None = None) -> dict[str, Any]:
        self.posts.append((url, dict(fields), basic_auth))
        return copy.deepcopy(self.token_response)


def claims(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "7f3c2a10-user",
        "aud": CLIENT_ID,
        "iat": NOW - 5,
        "exp": NOW + 300,
        "nonce": NONCE,
        "email": "alice@example.com",
        "email_verified": True,
        "groups": ["support", "admins"],
    }
    for name, value in overrides.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def id_token(key: ClientKey = KEY, /, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key.private, algorithm="RS256", headers={"kid": key.jwk["kid"]})


def forge(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    def encode(part: dict[str, Any]) -> str:
        return jose.b64url_encode(json.dumps(part).encode())

    return f"{encode(header)}.{encode(body)}.{jose.b64url_encode(signature) if signature else ''}"


def party(
    provider: FakeProvider | None = None, clock: FixedClock | None = None, **config: Any
) -> tuple[RelyingParty, FakeProvider, FixedClock]:
    provider = provider or FakeProvider()
    clock = clock or FixedClock(NOW)
    settings = UpstreamConfig(
        issuer=ISSUER, client_id=CLIENT_ID, client_secret=SECRET, redirect_uri=CALLBACK, **config
    )
    return RelyingParty(settings, provider, clock), provider, clock


def complete_with(token: str, rp: RelyingParty | None = None, provider: FakeProvider | None = None) -> Any:
    if rp is None or provider is None:
        rp, provider, _ = party()
    provider.token_response = {"access_token": "opaque", "token_type": "Bearer", "id_token": token}
    return rp.complete("the-code", nonce=NONCE, code_verifier=VERIFIER)


def rejected(token: str, **config: Any) -> str:
    rp, provider, _ = party(**config)
    with pytest.raises(UpstreamRejected) as refused:
        complete_with(token, rp, provider)
    return refused.value.reason


# --- the flow ---------------------------------------------------------------------------------------


def test_begin_sends_the_browser_to_the_provider_with_state_nonce_and_an_s256_challenge() -> None:
    rp, _, _ = party()
    url, request = rp.begin()
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTHORIZE
    assert query == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": code_challenge(request.code_verifier),
        "code_challenge_method": "S256",
    }
    assert len(request.code_verifier) >= 43 and len(request.state) >= 32 and len(request.nonce) >= 32
    assert request.code_verifier not in url and request.code_verifier not in repr(request)
    assert rp.begin()[1].state != request.state


def test_the_challenge_is_rfc_7636s_s256() -> None:
    # RFC 7636 Appendix B's example verifier and challenge.
    assert code_challenge(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_caller_that_picks_the_state_gets_the_same_url_shape_and_the_endpoints_query_is_kept() -> None:
    provider = FakeProvider()
    provider.discovery["authorization_endpoint"] = f"{AUTHORIZE}?tenant=blue"
    rp, _, _ = party(provider)
    query = parse_qs(urlsplit(rp.authorization_url("sign-in-id", "nonce-1", VERIFIER)).query)
    assert query["tenant"] == ["blue"] and query["state"] == ["sign-in-id"]
    assert query["code_challenge"] == [code_challenge(VERIFIER)]
    with pytest.raises(ValueError, match="RFC 7636"):
        rp.authorization_url("sign-in-id", "nonce-1", "too-short")


def test_completing_redeems_the_code_with_client_secret_basic_and_returns_the_verified_identity() -> None:
    rp, provider, _ = party()
    identity = complete_with(id_token(), rp, provider)
    assert identity == UpstreamIdentity(
        subject="7f3c2a10-user", email="alice@example.com", email_verified=True, groups=("support", "admins")
    )
    assert provider.posts == [
        (
            TOKEN,
            {
                "grant_type": "authorization_code",
                "code": "the-code",
                "redirect_uri": CALLBACK,
                "code_verifier": VERIFIER,
            },
            (CLIENT_ID, SECRET),
        )
    ]


def test_discovery_and_keys_are_fetched_once_for_many_sign_ins() -> None:
    rp, provider, _ = party()
    rp.begin()
    complete_with(id_token(), rp, provider)
    complete_with(id_token(), rp, provider)
    assert provider.fetches == [DISCOVERY, JWKS]


def test_the_groups_claim_is_the_configured_one() -> None:
    rp, provider, _ = party(groups_claim="cognito:groups")
    token = id_token(groups=None, **{"cognito:groups": ["eu-support"]})
    assert complete_with(token, rp, provider).groups == ("eu-support",)
    assert complete_with(id_token(groups=None), rp, provider).groups == ()
    assert rejected(id_token(groups="admins")) == "id_token:malformed_groups"


# --- discovery --------------------------------------------------------------------------------------


@pytest.mark.parametrize("issuer", [f"{ISSUER}/", "https://evil.example.com", ISSUER.upper(), None])
def test_a_discovery_document_for_another_issuer_is_refused(issuer: str | None) -> None:
    provider = FakeProvider()
    provider.discovery["issuer"] = issuer
    rp, _, _ = party(provider)
    with pytest.raises(UpstreamRejected) as refused:
        rp.begin()
    assert refused.value.reason == "discovery:issuer_mismatch"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("token_endpoint", None),
        ("jwks_uri", "http://keys.example.com/jwks.json"),
        ("authorization_endpoint", "javascript:alert(1)"),
    ],
)
def test_discovery_needs_https_endpoints(name: str, value: str | None) -> None:
    provider = FakeProvider()
    provider.discovery[name] = value
    rp, _, _ = party(provider)
    with pytest.raises(UpstreamRejected) as refused:
        rp.begin()
    assert refused.value.reason == "discovery:endpoints"


def test_a_provider_that_cannot_be_reached_is_a_dependency_failure_and_is_retried_next_time() -> None:
    provider = FakeProvider()
    provider.failing.add(DISCOVERY)
    rp, _, _ = party(provider)
    with pytest.raises(DependencyFailure):
        rp.begin()
    provider.failing.clear()
    assert rp.begin()[0].startswith(AUTHORIZE)


def test_configuration_refuses_hmac_algorithms_and_insecure_issuers() -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        party(allowed_algs=("RS256", "HS256"))
    with pytest.raises(ValueError, match="https"):
        UpstreamConfig(
            issuer="http://idp.example.com", client_id="c", client_secret="s", redirect_uri=CALLBACK
        )


# --- the ID token -----------------------------------------------------------------------------------


def test_an_id_token_for_another_audience_is_refused() -> None:
    assert rejected(id_token(aud="another-client")) == "id_token:wrong_audience"
    assert rejected(id_token(aud=None)) == "id_token:wrong_audience"


def test_several_audiences_need_azp_to_be_us() -> None:
    assert rejected(id_token(aud=[CLIENT_ID, "other"])) == "id_token:wrong_azp"
    assert rejected(id_token(aud=[CLIENT_ID, "other"], azp="other")) == "id_token:wrong_azp"
    assert complete_with(id_token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID)).email == "alice@example.com"


def test_alg_none_is_refused() -> None:
    token = forge({"alg": "none", "kid": "key-1"}, claims())
    assert rejected(token) == "id_token:alg_not_allowed"


def test_hs256_keyed_with_the_providers_public_key_is_refused() -> None:
    public_pem = KEY.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header, body = {"alg": "HS256", "kid": "key-1", "typ": "JWT"}, claims()
    unsigned = forge(header, body).rstrip(".")
    signature = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
    assert rejected(f"{unsigned}.{jose.b64url_encode(signature)}") == "id_token:alg_not_allowed"


def test_an_allowed_alg_the_key_is_not_pinned_to_is_refused() -> None:
    token = jwt.encode(claims(), KEY.private, algorithm="PS256", headers={"kid": "key-1"})
    assert rejected(token, allowed_algs=("RS256", "PS256")) == "id_token:alg_not_pinned"


def test_a_signature_by_another_key_under_a_known_kid_is_refused() -> None:
    assert rejected(id_token(rsa_key(kid="key-1"))) == "id_token:bad_signature"


def test_a_wrong_nonce_is_refused() -> None:
    assert rejected(id_token(nonce="another-nonce")) == "id_token:wrong_nonce"
    assert rejected(id_token(nonce=None)) == "id_token:wrong_nonce"


def test_an_expired_id_token_is_refused_beyond_the_clock_skew() -> None:
    assert rejected(id_token(exp=NOW - 61)) == "id_token:expired"
    assert complete_with(id_token(exp=NOW - 59)).subject == "7f3c2a10-user"
    assert rejected(id_token(exp=None)) == "id_token:malformed_times"


def test_an_id_token_issued_in_the_future_is_refused() -> None:
    assert rejected(id_token(iat=NOW + 120)) == "id_token:issued_in_future"
    assert rejected(id_token(iat="yesterday")) == "id_token:malformed_times"


def test_an_id_token_from_another_issuer_is_refused() -> None:
    assert (
        rejected(id_token(iss="https://cognito-idp.eu-west-1.amazonaws.com/other")) == "id_token:wrong_issuer"
    )
    assert rejected(id_token(iss=f"{ISSUER}/")) == "id_token:wrong_issuer"


def test_a_sign_in_without_an_email_or_with_an_unverified_one_is_refused() -> None:
    assert rejected(id_token(email=None)) == "id_token:missing_email"
    assert rejected(id_token(email="not an email")) == "id_token:missing_email"
    assert rejected(id_token(email_verified=False)) == "id_token:email_not_verified"
    assert rejected(id_token(email_verified="false")) == "id_token:email_not_verified"
    assert complete_with(id_token(email_verified="true")).email_verified is True
    assert complete_with(id_token(email_verified=None)).email_verified is False


def test_an_id_token_without_a_subject_is_refused() -> None:
    assert rejected(id_token(sub=None)) == "id_token:malformed_sub"


def test_an_unknown_kid_refetches_the_keys_at_most_once_a_minute() -> None:
    rp, provider, clock = party()
    complete_with(id_token(), rp, provider)
    rotated = rsa_key(kid="key-2")
    provider.jwks = {"keys": [KEY.jwk, rotated.jwk]}
    # Keys fetched moments ago: a new kid is not worth another fetch yet.
    with pytest.raises(UpstreamRejected) as refused:
        complete_with(id_token(rotated), rp, provider)
    assert refused.value.reason == "id_token:unknown_kid"
    assert provider.fetches.count(JWKS) == 1
    # A minute later the provider has rotated: one refetch finds the new key.
    clock.advance(60)
    assert complete_with(id_token(rotated, iat=int(clock.now())), rp, provider).email == "alice@example.com"
    assert provider.fetches.count(JWKS) == 2
    # Forged kids right after do not make it fetch again.
    for attempt in range(5):
        with pytest.raises(UpstreamRejected):
            complete_with(id_token(rsa_key(kid=f"forged-{attempt}")), rp, provider)
    assert provider.fetches.count(JWKS) == 2


def test_keys_are_refetched_after_an_hour_so_a_withdrawn_key_stops_counting() -> None:
    rp, provider, clock = party()
    complete_with(id_token(), rp, provider)
    provider.jwks = {"keys": []}
    clock.advance(3600)
    with pytest.raises(UpstreamRejected) as refused:
        complete_with(id_token(iat=int(clock.now()), exp=int(clock.now()) + 300), rp, provider)
    assert refused.value.reason == "id_token:unknown_kid"


# --- the token endpoint and the callback ------------------------------------------------------------


def test_a_token_endpoint_error_is_refused_with_a_bounded_reason() -> None:
    rp, provider, _ = party()
    provider.token_response = {"error": "invalid_grant", "error_description": "code reused"}
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete("the-code", nonce=NONCE, code_verifier=VERIFIER)
    assert refused.value.reason == "token_error:invalid_grant"
    provider.token_response = {"error": "<script>" + "x" * 500}
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete("the-code", nonce=NONCE, code_verifier=VERIFIER)
    assert refused.value.reason == "token_error:_script_" + "x" * 32


def test_a_token_response_without_an_id_token_is_refused() -> None:
    rp, provider, _ = party()
    provider.token_response = {"access_token": "opaque", "token_type": "Bearer"}
    with pytest.raises(UpstreamRejected) as refused:
        rp.complete("the-code", nonce=NONCE, code_verifier=VERIFIER)
    assert refused.value.reason == "token_response:no_id_token"


def test_the_callback_gives_state_and_code_or_the_providers_error() -> None:
    rp, _, _ = party()
    callback = rp.callback({"state": "sign-in-id", "code": "the-code"})
    assert (callback.state, callback.code) == ("sign-in-id", "the-code")
    with pytest.raises(UpstreamRejected) as refused:
        rp.callback({"error": "access_denied\r\nX-Injected: 1", "state": "sign-in-id"})
    assert refused.value.reason == "provider_error:access_denied__X-Injected__1"
    with pytest.raises(UpstreamRejected) as refused:
        rp.callback({"state": "sign-in-id"})
    assert refused.value.reason == "callback:missing_code_or_state"


def test_the_callback_refuses_another_issuers_response() -> None:
    """RFC 9207 §2.4: a wrong `iss` always; a missing one when the provider says it sends it."""
    rp, provider, _ = party()
    with pytest.raises(UpstreamRejected) as refused:
        rp.callback({"state": "s", "code": "c", "iss": "https://evil.example.com"})
    assert refused.value.reason == "callback:wrong_iss"
    provider.discovery["authorization_response_iss_parameter_supported"] = True
    strict, _, _ = party(provider)
    with pytest.raises(UpstreamRejected) as refused:
        strict.callback({"state": "s", "code": "c"})
    assert refused.value.reason == "callback:missing_iss"
    assert strict.callback({"state": "s", "code": "c", "iss": ISSUER}).code == "c"
