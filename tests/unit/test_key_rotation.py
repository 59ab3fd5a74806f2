"""Signing-key rotation with in-memory ports: the key set's timeline, the rotating signer, the JWKS it
publishes, and the operator's `keys rotate | list | retire` (signing_keys.py, operations/keys.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet as JoseKeySet

from agent_auth.adapters.kms import KmsPublicKeys, RotatingKmsSigner
from agent_auth.audit import AuditRecord
from agent_auth.clock import FixedClock
from agent_auth.oauth.jose import b64url_decode, b64url_encode, kid_for_key
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.operations import OperationFailed
from agent_auth.operations.keys import KeyDeployment, KeyTarget, list_keys, retire_keys, rotate_keys
from agent_auth.ports import Write
from agent_auth.signing_keys import (
    CLOCK_SKEW,
    DEFAULT_OVERLAP,
    JWKS_MAX_AGE,
    KEY_CACHE_SECONDS,
    MIN_OVERLAP,
    CachedKeySet,
    KeySet,
)

START = 1_800_000_000
LIFETIME = 900
INITIAL = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000001"
PREFIX = "alias/agent-auth/test/signing"


class FakeKms:
    """KMS in memory: RSA keys that sign RAW messages and give their public half as DER."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.aliases: dict[str, str] = {}
        self.sign_calls: list[str] = []
        self.retired: list[tuple[str, bool]] = []
        self._next = 2  # 1 is the deployment's own key (INITIAL)

    def add(self) -> str:
        arn = f"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-{self._next:012d}"
        self._next += 1
        self.keys[arn] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return arn

    # the boto3 calls KmsSigner and KmsPublicKeys make
    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        assert MessageType == "RAW" and SigningAlgorithm == "RSASSA_PKCS1_V1_5_SHA_256"
        self.sign_calls.append(KeyId)
        return {"Signature": self.keys[KeyId].sign(Message, padding.PKCS1v15(), hashes.SHA256())}

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        der = self.keys[KeyId].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return {"PublicKey": der}

    # the KeyAdmin port
    def create_signing_key(self, alias: str, alg: str) -> str:
        arn = self.add()
        self.aliases[alias] = arn
        return arn

    def retire(self, key_arn: str, *, delete: bool) -> None:
        self.retired.append((key_arn, delete))


@dataclass
class FakeKeyStore:
    stored: KeySet | None = None
    reads: int = 0
    audit: list[AuditRecord] = field(default_factory=list)
    conflict: bool = False

    def get_key_set(self) -> KeySet | None:
        self.reads += 1
        return self.stored

    def put_key_set(self, key_set: KeySet, audit: Write) -> bool:
        read_version = self.stored.version if self.stored else 0
        if self.conflict or key_set.version != read_version + 1:
            return False
        self.stored = key_set
        self.audit.append(audit.operation)
        return True


class Entries:
    def entry(self, record: AuditRecord) -> Write:
        return Write(record)


class World:
    def __init__(self) -> None:
        self.clock = FixedClock(START)
        self.kms = FakeKms()
        self.kms.keys[INITIAL] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.store = FakeKeyStore()
        self.target = KeyTarget(
            name="test",
            keys=self.store,
            kms=self.kms,
            audit=Entries(),
            operator="ops@example.com",
            clock=self.clock,
            deployment=KeyDeployment(
                alias_prefix=PREFIX, alg="RS256", token_lifetime=LIFETIME, initial_key_arn=INITIAL
            ),
        )
        # What the token and well-known functions build (wiring.token_signer, wiring.public_keys)
        initial = KeySet.initial(INITIAL, "RS256", kid_for_key(INITIAL))
        self.key_set = CachedKeySet(self.store, lambda: initial, self.clock)
        self.signer = RotatingKmsSigner(self.kms, self.key_set.get, self.clock)
        self.issuer = TokenIssuer(issuer="https://auth.example.com", signer=self.signer, lifetime=LIFETIME)
        self.public = KmsPublicKeys(
            self.kms, lambda: [(k.key_arn, k.alg) for k in self.key_set.get().published(self.clock.now())]
        )

    def token(self) -> str:
        issuance = Issuance(subject="bot", client_id="bot", audience="https://crm.example.com", scopes=("r",))
        return self.issuer.issue(issuance, int(self.clock.now())).token

    def jwks(self) -> dict[str, Any]:
        return self.public.jwks()

    def verifies(self, token: str) -> bool:
        """The token's signature checks against the JWKS published now (expiry is the verifier's job)."""
        try:
            jose_jwt.decode(token, JoseKeySet.import_key_set(self.jwks()), algorithms=["RS256"])
        except (JoseError, ValueError):
            return False
        return True


def _kid(token: str) -> str:
    return str(json.loads(b64url_decode(token.split(".", maxsplit=1)[0]))["kid"])


@pytest.fixture
def world() -> World:
    return World()


def test_the_overlap_leaves_room_for_every_cache() -> None:
    # The JWKS max-age stays below half the shortest overlap, and our own cache fits in it too
    assert JWKS_MAX_AGE < MIN_OVERLAP / 2
    assert KEY_CACHE_SECONDS + JWKS_MAX_AGE < MIN_OVERLAP <= DEFAULT_OVERLAP


def test_tokens_signed_before_and_after_a_rotation_verify_throughout(world: World) -> None:
    # Given a token signed with the deployment's own key
    old_token = world.token()
    assert _kid(old_token) == kid_for_key(INITIAL) and world.verifies(old_token)

    # When keys rotate with the default overlap
    rotation = rotate_keys(world.target)
    world.clock.advance(KEY_CACHE_SECONDS)  # every environment has re-read the key set

    # Then the new key is published at once, and the old one still signs until the overlap is over
    assert {k["kid"] for k in world.jwks()["keys"]} == {kid_for_key(INITIAL), rotation.new.kid}
    during = world.token()
    assert _kid(during) == kid_for_key(INITIAL)
    assert world.verifies(old_token) and world.verifies(during)

    # When the overlap has passed: the new key signs, and tokens of both keys verify
    world.clock.advance(DEFAULT_OVERLAP - KEY_CACHE_SECONDS)
    after = world.token()
    assert _kid(after) == rotation.new.kid
    assert all(world.verifies(t) for t in (old_token, during, after))

    # And the old key stays published until the last token it signed has expired (+ skew and cache)
    last_old_exp = rotation.new.activates_at + LIFETIME
    assert rotation.previous.retires_at == last_old_exp + KEY_CACHE_SECONDS + CLOCK_SKEW
    world.clock._now = rotation.previous.retires_at - 1
    assert world.verifies(during)
    # Then it is gone, the new key's tokens still verify
    world.clock._now = rotation.previous.retires_at
    assert [k["kid"] for k in world.jwks()["keys"]] == [rotation.new.kid]
    assert not world.verifies(during) and world.verifies(after)


def test_the_header_and_the_signature_always_name_the_same_key(world: World) -> None:
    # Given a rotation whose new key signs from `switch`
    rotation = rotate_keys(world.target, MIN_OVERLAP)
    world.clock._now = rotation.new.activates_at - 1
    # When the header is built a second before the switch and signed after it
    header_kid = world.signer.kid
    world.clock._now = rotation.new.activates_at + 1
    header = b64url_encode(json.dumps({"alg": "RS256", "kid": header_kid}).encode())
    world.signer.sign(f"{header}.e30".encode())
    # Then the key the header names signed it, not the one that signs now
    assert world.kms.sign_calls[-1] == INITIAL and header_kid == kid_for_key(INITIAL)


def test_the_key_set_is_read_once_per_cache_period(world: World) -> None:
    # Given a rotation (so there is an item to read)
    rotate_keys(world.target)
    reads = world.store.reads
    # When many tokens are signed within the cache period / Then the key set is read once
    for _ in range(5):
        world.token()
    assert world.store.reads == reads + 1
    world.clock.advance(KEY_CACHE_SECONDS)
    world.token()
    assert world.store.reads == reads + 2
    # And each public key is fetched from KMS once, however often the JWKS is served
    assert world.jwks() == world.jwks()


def test_a_rotation_in_progress_is_not_rotated_again(world: World) -> None:
    rotation = rotate_keys(world.target)
    with pytest.raises(OperationFailed, match="rotation is in progress"):
        rotate_keys(world.target)
    # Once the new key signs, the next rotation may start; the key set keeps every published key
    world.clock._now = rotation.new.activates_at
    second = rotate_keys(world.target)
    assert world.store.stored is not None
    assert [k.kid for k in world.store.stored.published(world.clock.now())] == [
        kid_for_key(INITIAL),
        rotation.new.kid,
        second.new.kid,
    ]


@pytest.mark.parametrize("overlap", [0, JWKS_MAX_AGE * 2, MIN_OVERLAP - 1])
def test_an_overlap_shorter_than_the_caches_is_refused(world: World, overlap: int) -> None:
    with pytest.raises(OperationFailed, match="overlap"):
        rotate_keys(world.target, overlap)
    assert world.kms.aliases == {} and world.store.stored is None


def test_a_deployment_without_rotation_refuses_and_says_how(world: World) -> None:
    target = replace(world.target, deployment=KeyDeployment("", "RS256", LIFETIME, INITIAL))
    with pytest.raises(OperationFailed, match="signingKeyRotation=true"):
        rotate_keys(target)


def test_a_rotation_is_audited_and_creates_its_key_behind_the_prefix(world: World) -> None:
    rotation = rotate_keys(world.target)
    [alias] = world.kms.aliases
    assert alias.startswith(PREFIX + "/") and rotation.new.alias == alias
    [record] = world.store.audit
    assert record.action == "keys.rotate" and record.operator == "ops@example.com"
    assert record.details["new_kid"] == rotation.new.kid
    assert record.details["previous_kid"] == kid_for_key(INITIAL)


def test_a_concurrent_rotation_loses_and_its_key_is_retired(world: World) -> None:
    world.store.conflict = True
    with pytest.raises(OperationFailed, match="changed while rotating"):
        rotate_keys(world.target)
    [(arn, delete)] = world.kms.retired
    assert arn == next(iter(world.kms.aliases.values())) and delete


def test_keys_retire_only_after_their_last_token_expired(world: World) -> None:
    rotation = rotate_keys(world.target)
    # Before the old key is unpublished: nothing to retire
    world.clock._now = rotation.previous.retires_at - 1
    assert retire_keys(world.target) == [] and world.kms.retired == []
    # After: the deployment's own key is disabled, not deleted (the stack owns it)
    world.clock._now = rotation.previous.retires_at
    [retired] = retire_keys(world.target)
    assert retired.kid == kid_for_key(INITIAL) and world.kms.retired == [(INITIAL, False)]
    assert world.store.audit[-1].action == "keys.retire"
    states = {row["kid"]: row["state"] for row in list_keys(world.target)}
    assert states == {kid_for_key(INITIAL): "retired", rotation.new.kid: "active"}
    # And a second run retires nothing twice
    assert retire_keys(world.target) == []


def test_keys_list_shows_each_state(world: World) -> None:
    rotation = rotate_keys(world.target)
    states = {row["kid"]: row["state"] for row in list_keys(world.target)}
    assert states == {kid_for_key(INITIAL): "active", rotation.new.kid: "pending"}
    world.clock._now = rotation.new.activates_at
    states = {row["kid"]: row["state"] for row in list_keys(world.target)}
    assert states == {kid_for_key(INITIAL): "previous", rotation.new.kid: "active"}
    world.clock._now = rotation.previous.retires_at
    states = {row["kid"]: row["state"] for row in list_keys(world.target)}
    assert states[kid_for_key(INITIAL)] == "unpublished"
