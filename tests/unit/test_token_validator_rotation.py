"""Our own access-token validator while signing keys rotate (docs/key-rotation.md): a key published after
the keys were read verifies after one refresh, made-up kids cost one read a minute, and a key no longer
published stops verifying within KEYS_CACHE_SECONDS."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_auth.clock import FixedClock
from agent_auth.oauth import jose
from agent_auth.oauth.jwt_verifier import JwtRejected
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.oauth.tokens.validator import KEYS_CACHE_SECONDS, MIN_REFRESH_SECONDS, AccessTokenValidator
from tests.unit.fakes import LocalSigner

ISSUER = "https://auth.example.com"
NOW = 1_800_000_000


def signer(kid: str) -> LocalSigner:
    made = LocalSigner()
    made.kid = kid
    return made


OLD, NEW = signer("old"), signer("new")


class Publication:
    """The published key set as it changes during a rotation; counts its reads."""

    def __init__(self, *signers: LocalSigner) -> None:
        self.signers = list(signers)
        self.reads = 0

    def jwks(self) -> dict[str, Any]:
        self.reads += 1
        return {
            "keys": [
                jose.public_jwk_from_der(
                    s.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
                    s.alg,
                    s.kid,
                )
                for s in self.signers
            ]
        }


def token(by: LocalSigner, at: float, kid: str | None = None) -> str:
    if kid is not None:
        by = signer(kid)
        by.key = OLD.key
    issuance = Issuance("alice@example.com", "support-bot", "https://crm.example.com", ("crm.read",))
    return TokenIssuer(issuer=ISSUER, signer=by, lifetime=3600).issue(issuance, int(at)).token


def reason(validator: AccessTokenValidator, value: str) -> str:
    with pytest.raises(JwtRejected) as refused:
        validator.validate(value)
    return refused.value.reason


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def test_a_key_published_after_the_first_verification_verifies_after_one_refresh(clock: FixedClock) -> None:
    # Given the validator has read the keys while only the old one was published
    published = Publication(OLD)
    validator = AccessTokenValidator(issuer=ISSUER, keys=published, clock=clock)
    assert validator.validate(token(OLD, clock.now())).subject == "alice@example.com"
    # When the rotation publishes the new key, a minute later, and it signs a token
    published.signers.append(NEW)
    clock.advance(MIN_REFRESH_SECONDS)
    # Then that token verifies, after exactly one more read of the keys
    assert validator.validate(token(NEW, clock.now())).subject == "alice@example.com"
    assert published.reads == 2
    # And tokens of both keys keep verifying without further reads
    assert validator.validate(token(OLD, clock.now())) and validator.validate(token(NEW, clock.now()))
    assert published.reads == 2


def test_a_flood_of_unknown_kids_reads_the_keys_once_a_minute(clock: FixedClock) -> None:
    published = Publication(OLD)
    validator = AccessTokenValidator(issuer=ISSUER, keys=published, clock=clock)
    validator.validate(token(OLD, clock.now()))
    # When made-up kids arrive every second for three minutes
    for second in range(180):
        assert reason(validator, token(OLD, clock.now(), kid=f"made-up-{second}")) == "unknown_kid"
        clock.advance(1)
    # Then the keys were read once at first and once a minute since (at 60 s and 120 s), never per request
    assert published.reads == 3


def test_a_key_no_longer_published_stops_verifying_after_the_cache_period(clock: FixedClock) -> None:
    # Given both keys published and read (the overlap)
    published = Publication(OLD, NEW)
    validator = AccessTokenValidator(issuer=ISSUER, keys=published, clock=clock)
    assert validator.validate(token(OLD, clock.now()))
    # When the old key is unpublished
    published.signers.remove(OLD)
    # Then within the cache period the parsed keys still stand, and after it the old key is refused
    clock.advance(KEYS_CACHE_SECONDS - 1)
    assert validator.validate(token(OLD, clock.now())) and published.reads == 1
    clock.advance(1)
    assert reason(validator, token(OLD, clock.now())) == "unknown_kid"
    assert validator.validate(token(NEW, clock.now())) and published.reads == 2


def test_an_unknown_kid_right_after_a_read_is_refused_without_another(clock: FixedClock) -> None:
    published = Publication(OLD)
    validator = AccessTokenValidator(issuer=ISSUER, keys=published, clock=clock)
    validator.validate(token(OLD, clock.now()))
    published.signers.append(NEW)
    # Then a key published within the minute is found only once the minute has passed
    assert reason(validator, token(NEW, clock.now())) == "unknown_kid" and published.reads == 1
    clock.advance(MIN_REFRESH_SECONDS - 1)
    assert reason(validator, token(NEW, clock.now())) == "unknown_kid" and published.reads == 1
    clock.advance(1)
    assert validator.validate(token(NEW, clock.now())) and published.reads == 2


def test_other_refusals_never_read_the_keys_again(clock: FixedClock) -> None:
    published = Publication(OLD)
    validator = AccessTokenValidator(issuer=ISSUER, keys=published, clock=clock)
    validator.validate(token(OLD, clock.now()))
    clock.advance(MIN_REFRESH_SECONDS)
    forged = token(OLD, clock.now())
    forged = forged[: forged.rindex(".") + 1] + "AAAA"
    assert reason(validator, forged) == "bad_signature" and published.reads == 1
