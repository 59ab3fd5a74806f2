"""KMS as the token signer, the source of the published keys, and where `agent-auth keys` makes keys.

Sign uses MessageType RAW (KMS hashes the signing input itself; it stays far below the 4 KB limit).
KMS returns ECDSA signatures DER-encoded, while JWS ES256 wants the raw 64-byte r||s (RFC 7518 §3.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from agent_auth.adapters.dynamodb import aws_call
from agent_auth.clock import Clock
from agent_auth.errors import DependencyFailure
from agent_auth.oauth import jose
from agent_auth.signing_keys import KeySet, SigningKey

KMS_ALGORITHM = {"RS256": "RSASSA_PKCS1_V1_5_SHA_256", "ES256": "ECDSA_SHA_256"}


class KmsSigner:
    def __init__(self, client: Any, key_arn: str, alg: str) -> None:
        self._client = client
        self._key_arn = key_arn
        self.alg = alg
        self.kid = jose.kid_for_key(key_arn)

    def sign(self, signing_input: bytes) -> bytes:
        with aws_call():
            result = self._client.sign(
                KeyId=self._key_arn,
                Message=signing_input,
                MessageType="RAW",
                SigningAlgorithm=KMS_ALGORITHM[self.alg],
            )
        signature: bytes = result["Signature"]
        if self.alg == "ES256":
            r, s = decode_dss_signature(signature)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signature


class RotatingKmsSigner:
    """Signs with the key the key set names for now (signing_keys.py), read through its cache.

    The header is built from `alg` and `kid` before `sign` runs; a switch between the two must not sign
    with one key and name another, so `sign` uses the key the signing input's own header names."""

    def __init__(self, client: Any, key_set: Callable[[], KeySet], clock: Clock) -> None:
        self._client = client
        self._key_set = key_set
        self._clock = clock
        self._signers: dict[str, KmsSigner] = {}

    def _current(self) -> SigningKey:
        return self._key_set().signing(self._clock.now())

    @property
    def alg(self) -> str:
        return self._current().alg

    @property
    def kid(self) -> str:
        return self._current().kid

    def sign(self, signing_input: bytes) -> bytes:
        header = jose.strict_json_object(jose.b64url_decode(signing_input.split(b".", 1)[0].decode("ascii")))
        key = self._key_set().by_kid(header.get("kid"))
        if key is None or header.get("alg") != key.alg:
            raise DependencyFailure("signing_key_unavailable")
        signer = self._signers.get(key.kid)
        if signer is None:
            signer = self._signers[key.kid] = KmsSigner(self._client, key.key_arn, key.alg)
        return signer.sign(signing_input)


class KmsPublicKeys:
    """The JWKS. Each key's public half is fetched from KMS once per execution environment, never per
    request; which keys are published comes from `published` (static, or the rotating key set)."""

    def __init__(self, client: Any, published: Callable[[], Sequence[tuple[str, str]]]) -> None:
        """`published`: (key ARN, alg) of each key to publish now."""
        self._client = client
        self._published = published
        self._jwks: dict[str, dict[str, Any]] = {}

    @classmethod
    def static(cls, client: Any, key_arns: Sequence[str], alg: str) -> KmsPublicKeys:
        keys = tuple((arn, alg) for arn in key_arns)
        return cls(client, lambda: keys)

    def _jwk(self, arn: str, alg: str) -> dict[str, Any]:
        if arn not in self._jwks:
            with aws_call():
                der = self._client.get_public_key(KeyId=arn)["PublicKey"]
            self._jwks[arn] = jose.public_jwk_from_der(der, alg, jose.kid_for_key(arn))
        return self._jwks[arn]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._jwk(arn, alg) for arn, alg in dict.fromkeys(self._published())]}


class KmsKeyAdmin:
    """What `agent-auth keys` does in KMS: create a signing key behind an alias, and retire one."""

    DELETION_WINDOW_DAYS = 30
    """The longest KMS allows: a key retired by mistake can still be recovered (CancelKeyDeletion)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def create_signing_key(self, alias: str, alg: str) -> str:
        from agent_auth.config import KEY_SPEC

        with aws_call():
            key = self._client.create_key(
                KeySpec=KEY_SPEC[alg],
                KeyUsage="SIGN_VERIFY",
                Description=f"agent-auth access token signing key ({alg}), {alias}",
            )
            arn = str(key["KeyMetadata"]["Arn"])
            # The functions may use only keys behind the deployment's alias prefix (kms:ResourceAliases).
            self._client.create_alias(AliasName=alias, TargetKeyId=arn)
        return arn

    def retire(self, key_arn: str, *, delete: bool) -> None:
        """Disable the key; with `delete`, schedule its deletion too. Repeating it changes nothing."""
        with aws_call():
            metadata = self._client.describe_key(KeyId=key_arn)["KeyMetadata"]
            key_id, state = metadata["KeyId"], metadata["KeyState"]
            if state == "Enabled":
                self._client.disable_key(KeyId=key_id)
            if delete and state != "PendingDeletion":
                self._client.schedule_key_deletion(
                    KeyId=key_id, PendingWindowInDays=self.DELETION_WINDOW_DAYS
                )
