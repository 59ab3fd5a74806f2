"""The offline verifier: what it accepts, what it refuses and why, the key cache, and introspection."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization

from agent_auth_sdk import AgentAuth, AgentAuthError, InsufficientScope, InvalidToken, Verifier
from agent_auth_sdk.keys import parse_jwks
from agent_auth_sdk.resource_metadata import protected_resource_metadata, resource_metadata_url
from tests.sdk.fakes import API, ISSUER, FakeServer, form_of, raw_token, sign_access_token
from tests.support import ec_key, rsa_key


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class FromNow:
    """A time relative to when the test runs, not to when the parameters were collected."""

    seconds: int


def verifier_for(server: FakeServer, **kwargs: Any) -> Verifier:
    return Verifier(ISSUER, API, http=server.client(), **kwargs)


def test_a_valid_token_exposes_the_user_the_agent_and_the_act_chain() -> None:
    server = FakeServer()
    token = server.access_token(
        sub="alice@example.com",
        client_id="report-bot",
        scope="crm.contacts.read crm.contacts.write",
        act={"sub": "report-bot", "act": {"sub": "support-bot"}},
    )
    verified = verifier_for(server).verify(token, scopes=["crm.contacts.read"])
    assert verified.user == "alice@example.com" and verified.agent == "report-bot"
    assert verified.actors == ("report-bot", "support-bot") and verified.delegated
    assert verified.scopes == {"crm.contacts.read", "crm.contacts.write"}
    assert verified.act == {"sub": "report-bot", "act": {"sub": "support-bot"}}
    assert token not in repr(verified)


def test_an_agents_own_token_is_not_delegated() -> None:
    server = FakeServer()
    verified = verifier_for(server).verify(server.access_token())
    assert (
        verified.user == verified.agent == "support-bot" and not verified.delegated and verified.actors == ()
    )


@pytest.mark.parametrize(
    ("overrides", "headers", "why"),
    [
        ({"iss": ISSUER + "/"}, {}, "another issuer"),
        ({"iss": "https://evil.example.com"}, {}, "another issuer"),
        ({"aud": "https://billing.example.com"}, {}, "another audience"),
        ({"aud": None}, {}, "another audience"),
        ({"exp": FromNow(-61)}, {}, "expired"),
        ({"exp": None}, {}, "no expiry"),
        ({"exp": True}, {}, "no expiry"),
        ({"nbf": FromNow(120)}, {}, "not valid yet"),
        ({"iat": FromNow(120)}, {}, "not valid yet"),
        ({"client_id": None}, {}, "no subject or client"),
        ({"sub": None}, {}, "no subject or client"),
        ({"act": {"no": "sub"}}, {}, "act"),
        ({}, {"typ": "JWT"}, "not an access token"),
        ({}, {"typ": None}, "not an access token"),
        ({}, {"typ": "id_token+jwt"}, "not an access token"),
        ({}, {"crit": ["exp"]}, "header"),
        ({}, {"kid": "someone-elses"}, "unknown key"),
    ],
)
def test_refused(overrides: dict[str, Any], headers: dict[str, Any], why: str) -> None:
    server = FakeServer()
    claims = {k: int(time.time()) + v.seconds if isinstance(v, FromNow) else v for k, v in overrides.items()}
    token = server.access_token(headers=headers, **claims)
    with pytest.raises(InvalidToken, match=why) as caught:
        verifier_for(server).verify(token)
    assert caught.value.status == 401 and caught.value.error == "invalid_token"


def test_a_small_clock_skew_is_allowed() -> None:
    server = FakeServer()
    verifier_for(server).verify(server.access_token(exp=int(time.time()) - 30, iat=int(time.time()) + 30))


def test_application_at_jwt_is_an_access_token_too() -> None:
    server = FakeServer()
    verifier_for(server).verify(server.access_token(headers={"typ": "application/at+jwt"}))


def test_the_algorithm_is_the_keys_not_the_tokens() -> None:
    # Given an RSA key pinned to RS256, a token signed by that very key with PS256 is still refused
    server = FakeServer()
    with pytest.raises(InvalidToken, match="algorithm"):
        verifier_for(server).verify(sign_access_token(server.key, alg="PS256"))


def test_hmac_keyed_with_the_public_key_is_refused() -> None:
    # The classic confusion: HS256 with the published key's PEM as the secret
    server = FakeServer()
    pem = server.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"typ": "at+jwt", "kid": server.key.jwk["kid"]}
    claims = {"iss": ISSUER, "aud": API, "exp": int(time.time()) + 60, "sub": "x", "client_id": "x"}
    forged = _hs256(claims, header, pem)
    with pytest.raises(InvalidToken, match="algorithm"):
        verifier_for(server).verify(forged)


def _hs256(claims: dict[str, Any], header: dict[str, Any], secret: bytes) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps({**header, 'alg': 'HS256'}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_a_bad_signature_is_refused() -> None:
    server = FakeServer()
    head, body, _ = server.access_token().split(".")
    other = sign_access_token(rsa_key("as-1")).split(".")[2]
    with pytest.raises(InvalidToken, match="signature"):
        verifier_for(server).verify(f"{head}.{body}.{other}")


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.???.###", "x" * 20000])
def test_malformed_tokens_are_invalid_tokens(token: str) -> None:
    with pytest.raises(InvalidToken):
        verifier_for(FakeServer()).verify(token)


def test_duplicate_claim_names_are_refused() -> None:
    server = FakeServer()
    now = int(time.time())
    claims = (
        f'{{"iss":"{ISSUER}","aud":"{API}","exp":{now + 60},"sub":"a","client_id":"a",'
        f'"scope":"crm.contacts.read","scope":"crm.contacts.write"}}'
    )
    token = raw_token({"alg": "RS256", "typ": "at+jwt", "kid": "as-1"}, claims, server.key)
    with pytest.raises(InvalidToken, match="malformed"):
        verifier_for(server).verify(token)


def test_required_scopes_are_insufficient_scope() -> None:
    server = FakeServer()
    verifier = verifier_for(server, scopes=["crm.contacts.read"])
    with pytest.raises(InsufficientScope) as caught:
        verifier.verify(server.access_token(), scopes=["crm.contacts.write"])
    assert caught.value.status == 403
    challenge = caught.value.www_authenticate(verifier.resource_metadata_url)
    assert challenge == (
        'Bearer error="insufficient_scope", error_description="The token lacks a required scope", '
        'scope="crm.contacts.read crm.contacts.write", '
        'resource_metadata="https://crm.example.com/.well-known/oauth-protected-resource"'
    )


def test_no_network_after_the_first_key_fetch() -> None:
    server = FakeServer()
    verifier = verifier_for(server)
    tokens = [server.access_token(jti=f"t{i}") for i in range(50)]
    for token in tokens * 20:
        verifier.verify(token)
    # One discovery, one JWKS fetch: then nothing, for 1,000 verifications
    assert len(server.sent) == 2 and server.counts["GET /jwks.json"] == 1


def test_a_configured_jwks_uri_skips_discovery() -> None:
    server = FakeServer()
    verifier = Verifier(ISSUER, API, http=server.client(), jwks_uri=f"{ISSUER}/jwks.json")
    verifier.verify(server.access_token())
    assert [r.url.path for r in server.sent] == ["/jwks.json"]


def test_an_unknown_kid_refreshes_the_keys_at_most_once_a_minute() -> None:
    # Given a verifier that has fetched the keys once
    server = FakeServer()
    clock = Monotonic()
    verifier = verifier_for(server, refresh_clock=clock)
    verifier.verify(server.access_token())
    # When a flood of tokens names a kid nobody published, right after the fetch
    rotated = rsa_key("as-2")
    for _ in range(50):
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(sign_access_token(rotated))
    # Then the keys just fetched are not fetched again
    assert server.counts["GET /jwks.json"] == 1
    # And a minute later, another flood costs exactly one refresh
    clock.now += 60
    for _ in range(50):
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(sign_access_token(rotated))
    assert server.counts["GET /jwks.json"] == 2
    # And when the server publishes the new key, a minute later it is picked up
    server.jwks_keys = [server.key.jwk, rotated.jwk]
    clock.now += 59
    with pytest.raises(InvalidToken):
        verifier.verify(sign_access_token(rotated))
    clock.now += 1
    assert verifier.verify(sign_access_token(rotated)).agent == "support-bot"
    assert server.counts["GET /jwks.json"] == 3


def test_a_jwks_that_cannot_be_fetched_at_first_is_an_error_not_a_refusal() -> None:
    server = FakeServer()
    server.routes["/jwks.json"] = lambda r: httpx2.Response(503)
    server.handle = _without_jwks(server)  # type: ignore[method-assign]
    with pytest.raises(AgentAuthError) as caught:
        verifier_for(server).verify(server.access_token())
    assert not isinstance(caught.value, InvalidToken)


def _without_jwks(server: FakeServer) -> Any:
    original = server.handle

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/jwks.json":
            server.sent.append(request)
            return httpx2.Response(503)
        return original(request)

    return handle


def test_only_asymmetric_signing_keys_are_kept() -> None:
    ec = ec_key("ec-1")
    keys = parse_jwks(
        {
            "keys": [
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {**rsa_key("enc").jwk, "use": "enc"},
                {**rsa_key("nokid").jwk, "kid": None},
                {**rsa_key("rs512").jwk, "alg": "RS512"},
                ec.jwk,
                "not a key",
            ]
        }
    )
    assert set(keys) == {"ec-1"} and keys["ec-1"].alg == "ES256"


def test_ec_tokens_verify() -> None:
    server = FakeServer(key=ec_key("ec-as"))
    assert verifier_for(server).verify(server.access_token()).agent == "support-bot"


def test_introspection_sees_a_revoked_token() -> None:
    # Given the API's own agent for introspection, and a token the server says is no longer active
    server = FakeServer(routes={"/introspect": lambda r: httpx2.Response(200, json={"active": False})})
    rs_agent = AgentAuth(ISSUER, "crm-api", client_secret="rs-secret", http=server.client())
    verifier = verifier_for(server, introspection=rs_agent)
    token = server.access_token()
    # Then offline it passes, and with introspection it is refused
    verifier.verify(token)
    with pytest.raises(InvalidToken, match="not active"):
        verifier.verify(token, introspect=True)
    [sent] = [r for r in server.sent if r.url.path == "/introspect"]
    assert form_of(sent)["token"] == token and sent.headers["authorization"].startswith("Basic ")
    server.routes["/introspect"] = lambda r: httpx2.Response(200, json={"active": True, "sub": "support-bot"})
    assert verifier.verify(token, introspect=True).user == "support-bot"


def test_introspection_is_never_asked_for_a_token_that_fails_offline() -> None:
    server = FakeServer(routes={"/introspect": lambda r: httpx2.Response(200, json={"active": True})})
    rs_agent = AgentAuth(ISSUER, "crm-api", client_secret="rs-secret", http=server.client())
    with pytest.raises(InvalidToken):
        verifier_for(server, introspection=rs_agent).verify(
            server.access_token(aud="https://x"), introspect=True
        )
    assert server.counts["POST /introspect"] == 0


def test_introspect_without_an_introspection_agent_is_a_configuration_error() -> None:
    server = FakeServer()
    with pytest.raises(AgentAuthError, match="introspection"):
        verifier_for(server).verify(server.access_token(), introspect=True)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer   "])
def test_the_authorization_header_must_carry_a_bearer_token(header: str | None) -> None:
    with pytest.raises(InvalidToken, match="bearer token is required"):
        verifier_for(FakeServer()).verify_header(header)


def test_a_plain_function_protected_by_the_decorator() -> None:
    server = FakeServer()
    verifier = verifier_for(server)

    @verifier.requires("crm.contacts.read")
    def contacts(token: Any, limit: int) -> str:
        return f"{token.user}:{limit}"

    assert contacts(f"Bearer {server.access_token()}", 5) == "support-bot:5"
    with pytest.raises(InsufficientScope):
        contacts(f"bearer {server.access_token(scope='other')}", 5)
    with pytest.raises(InvalidToken):
        contacts(None, 5)


def test_protected_resource_metadata_names_exactly_our_issuer() -> None:
    assert resource_metadata_url("http://127.0.0.1:8931/mcp") == (
        "http://127.0.0.1:8931/.well-known/oauth-protected-resource/mcp"
    )
    assert protected_resource_metadata(API, ISSUER, scopes_supported=["crm.contacts.read"]) == {
        "resource": API,
        "authorization_servers": [ISSUER],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["crm.contacts.read"],
    }
    assert verifier_for(FakeServer()).resource_metadata()["authorization_servers"] == [ISSUER]
