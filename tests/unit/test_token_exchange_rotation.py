"""The exchange grant's own keys across a signing-key rotation (docs/key-rotation.md), on fakes: our
keys are read once a minute at most for unknown kids, and a key no longer published stops verifying."""

from __future__ import annotations

import pytest

from agent_auth.oauth.grant_types.token_exchange import ACCESS_TOKEN_TYPE
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.oauth.tokens.validator import KEYS_CACHE_SECONDS
from tests.unit.exchange_support import ALICE, CRM, ISSUER, Harness
from tests.unit.fakes import LocalSigner


@pytest.fixture
def h() -> Harness:
    return Harness()


def signed_by(h: Harness, signer: LocalSigner) -> str:
    issuance = Issuance(ALICE, "front", CRM, ("crm.read",))
    return TokenIssuer(issuer=ISSUER, signer=signer, lifetime=3600).issue(issuance, int(h.clock.now())).token


def made_up(kid: str) -> LocalSigner:
    signer = LocalSigner()
    signer.kid = kid
    return signer


def subject(token: str) -> dict[str, str]:
    return {"subject_token": token, "subject_token_type": ACCESS_TOKEN_TYPE, "resource": CRM}


def test_unknown_kids_read_our_keys_once_a_minute(h: Harness) -> None:
    # Given the grant has read our published keys
    h.exchange("front", h.user_token(), resource=CRM)
    strangers = [made_up(f"made-up-{i}") for i in range(3)]
    # When tokens of unknown kids arrive over three minutes
    for _ in range(3):
        for stranger in strangers:
            assert (
                h.refused("front", subject(signed_by(h, stranger)))[1].reason == "subject_token_unknown_kid"
            )
        h.clock.advance(61)
    # Then our keys were read once, and once more per minute in which an unknown kid came after the first
    assert h.published.reads == 3


def test_a_key_no_longer_published_stops_verifying(h: Harness) -> None:
    # Given a rotation's overlap: the old key and a new one published, the old one used
    new = made_up("new")
    h.published.publish(new)
    h.exchange("front", h.user_token(), resource=CRM)
    # When the old key is unpublished (its tokens expired) and the keys' cache period has passed
    old_jwk = h.published.keys.pop(0)
    assert old_jwk["kid"] == h.signer.kid
    h.clock.advance(KEYS_CACHE_SECONDS)
    # Then a token the old key signs is refused, and one of the new key exchanged
    stale = h.user_token(lifetime=3600)
    assert h.refused("front", subject(stale))[1].reason == "subject_token_unknown_kid"
    assert h.exchange("front", signed_by(h, new), resource=CRM).user == ALICE
