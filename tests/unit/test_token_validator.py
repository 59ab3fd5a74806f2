"""Our own access tokens, checked as exchange and introspection will check them (RFC 9068 §4, RFC 8725)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_auth.clock import FixedClock
from agent_auth.oauth import jose
from agent_auth.oauth.jwt_verifier import JwtRejected
from agent_auth.oauth.tokens.access_token import sign_jwt
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.oauth.tokens.validator import AccessTokenValidator
from tests.unit.fakes import LocalSigner

ISSUER = "https://auth.example.com"
NOW = 1_800_000_000
SIGNER = LocalSigner()


class Published:
    def __init__(self, *signers: LocalSigner) -> None:
        self.calls = 0
        self._keys = [
            jose.public_jwk_from_der(
                s.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), s.alg, s.kid
            )
            for s in signers
        ]

    def jwks(self) -> dict[str, Any]:
        self.calls += 1
        return {"keys": self._keys}


class Revoked:
    def __init__(self, *token_ids: str) -> None:
        self.token_ids = set(token_ids)

    def is_revoked(self, claims: Mapping[str, Any], now: int) -> bool:
        return claims["jti"] in self.token_ids


def issue(**overrides: Any) -> str:
    issuance = Issuance(
        subject="alice@example.com",
        client_id="support-bot",
        audience="https://crm.example.com",
        scopes=("crm.read",),
        act={"sub": "support-bot"},
    )
    return TokenIssuer(issuer=ISSUER, signer=SIGNER, lifetime=300).issue(issuance, NOW).token


def validator(clock: FixedClock | None = None, **kwargs: Any) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=ISSUER, keys=kwargs.pop("keys", Published(SIGNER)), clock=clock or FixedClock(NOW), **kwargs
    )


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"x") -> str:
    encode = lambda part: jose.b64url_encode(json.dumps(part).encode())  # noqa: E731
    return f"{encode(header)}.{encode(claims)}.{jose.b64url_encode(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(jose.b64url_decode(token.split(".")[1]))


def test_a_token_we_issued_is_valid_and_exposes_its_claims() -> None:
    checked = validator().validate(issue())
    assert checked.subject == "alice@example.com" and checked.client_id == "support-bot"
    assert checked.audience == "https://crm.example.com" and checked.scopes == ("crm.read",)
    assert checked.act == {"sub": "support-bot"} and checked.expires_at == NOW + 300


def test_keys_are_parsed_once() -> None:
    keys = Published(SIGNER)
    check = validator(keys=keys)
    check.validate(issue())
    check.validate(issue())
    assert keys.calls == 1


@pytest.mark.parametrize(
    ("moved", "reason"), [(300 + 61, "expired"), (-61, "issued_in_future")], ids=["expired", "future"]
)
def test_expiry_is_checked_in_code_with_a_small_skew(moved: int, reason: str) -> None:
    token = issue()
    assert validator(FixedClock(NOW + 300 + 59)).validate(token)  # within the skew
    with pytest.raises(JwtRejected) as refused:
        validator(FixedClock(NOW + moved)).validate(token)
    assert refused.value.reason == reason


def test_another_issuer_is_refused() -> None:
    other = TokenIssuer(issuer="https://evil.example.com", signer=SIGNER, lifetime=300)
    token = other.issue(Issuance("u", "c", "https://crm.example.com", ("a",)), NOW).token
    with pytest.raises(JwtRejected, match="wrong_issuer"):
        validator().validate(token)


def test_a_jwt_that_is_not_an_access_token_is_refused() -> None:
    """An ID token (typ JWT) signed by our very key is still not an access token (RFC 9068 §4)."""
    id_token = sign_jwt(SIGNER, claims_of(issue()), typ="JWT")
    with pytest.raises(JwtRejected, match="wrong_typ"):
        validator().validate(id_token)


def test_a_key_we_do_not_publish_is_refused() -> None:
    stranger = LocalSigner()
    stranger.kid = "local"  # same kid, different key: the signature fails
    with pytest.raises(JwtRejected, match="bad_signature"):
        validator().validate(sign_jwt(stranger, claims_of(issue())))
    stranger.kid = "other"
    with pytest.raises(JwtRejected, match="unknown_kid"):
        validator().validate(sign_jwt(stranger, claims_of(issue())))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "none", "typ": "at+jwt", "kid": "local"}, "alg_refused"),
        ({"alg": "HS256", "typ": "at+jwt", "kid": "local"}, "alg_refused"),
        (
            {"alg": "RS256", "typ": "at+jwt", "kid": "local", "jku": "https://evil.example.com"},
            "header_refused",
        ),
        ({"alg": "ES256", "typ": "at+jwt", "kid": "local"}, "alg_not_pinned"),
    ],
)
def test_signature_tricks_are_refused_before_any_key_is_used(header: dict[str, Any], reason: str) -> None:
    with pytest.raises(JwtRejected) as refused:
        validator().validate(forge(header, claims_of(issue())))
    assert refused.value.reason == reason


def test_tampered_claims_break_the_signature() -> None:
    header, _, signature = issue().split(".")
    widened = {**claims_of(issue()), "scope": "crm.read crm.write"}
    token = f"{header}.{jose.b64url_encode(json.dumps(widened).encode())}.{signature}"
    with pytest.raises(JwtRejected, match="bad_signature"):
        validator().validate(token)


def test_duplicate_claim_names_are_refused() -> None:
    header, _, signature = issue().split(".")
    payload = jose.b64url_encode(b'{"sub":"a","sub":"b"}')
    with pytest.raises(JwtRejected, match="malformed"):
        validator().validate(f"{header}.{payload}.{signature}")


def test_oversized_tokens_are_refused_unparsed() -> None:
    with pytest.raises(JwtRejected, match="too_large"):
        validator().validate("a" * 8193)


def test_required_claims_must_be_present() -> None:
    claims = claims_of(issue())
    del claims["client_id"]
    with pytest.raises(JwtRejected, match="missing_claims"):
        validator().validate(sign_jwt(SIGNER, claims))


def test_the_revocation_hook_is_asked() -> None:
    token = issue()
    with pytest.raises(JwtRejected, match="revoked"):
        validator(revocations=Revoked(claims_of(token)["jti"])).validate(token)
    assert validator(revocations=Revoked("another")).validate(token)
