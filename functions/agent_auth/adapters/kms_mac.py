"""The KMS HMAC key that signs approval links (GenerateMac in the notifier, VerifyMac in approvals)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from agent_auth.adapters.dynamodb import aws_call
from agent_auth.errors import DependencyFailure

MAC_ALGORITHM = "HMAC_SHA_256"


class KmsMac:
    def __init__(self, client: Any, key_arn: str) -> None:
        self._client = client
        self._key_arn = key_arn

    def generate_mac(self, message: bytes) -> bytes:
        with aws_call():
            result = self._client.generate_mac(
                KeyId=self._key_arn, Message=message, MacAlgorithm=MAC_ALGORITHM
            )
        return bytes(result["Mac"])

    def verify_mac(self, message: bytes, mac: bytes) -> bool:
        if not mac or len(mac) > 64:
            return False
        try:
            with aws_call():
                result = self._client.verify_mac(
                    KeyId=self._key_arn, Message=message, MacAlgorithm=MAC_ALGORITHM, Mac=mac
                )
        except DependencyFailure as failure:
            cause = failure.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
                "KMSInvalidMacException",
                "ValidationException",
            ):
                return False
            raise
        return bool(result.get("MacValid"))
