"""KMS as the token signer and the source of the published keys.

Sign uses MessageType RAW (KMS hashes the signing input itself; it stays far below the 4 KB limit).
KMS returns ECDSA signatures DER-encoded, while JWS ES256 wants the raw 64-byte r||s (RFC 7518 §3.4).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from agent_auth.adapters.dynamodb import aws_call
from agent_auth.oauth import jose

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


class KmsPublicKeys:
    """The JWKS: fetched from KMS once per execution environment, never per request."""

    def __init__(self, client: Any, key_arns: tuple[str, ...], alg: str) -> None:
        self._client = client
        self._key_arns = key_arns
        self._alg = alg
        self._jwks: dict[str, Any] | None = None

    def jwks(self) -> dict[str, Any]:
        if self._jwks is None:
            keys = []
            for arn in self._key_arns:
                with aws_call():
                    der = self._client.get_public_key(KeyId=arn)["PublicKey"]
                keys.append(jose.public_jwk_from_der(der, self._alg, jose.kid_for_key(arn)))
            self._jwks = {"keys": keys}
        return self._jwks
