"""The asymmetric KMS key that signs access tokens; the private half never leaves KMS."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct

from agent_auth.config import INITIAL_KEY_ALIAS, KEY_SPEC


class SigningKey(Construct):
    """With `alias_prefix` (key rotation), the key is `<prefix>/initial`: the functions may use keys behind
    `<prefix>/*` only, and `agent-auth keys rotate` creates its keys there (docs/key-rotation.md)."""

    def __init__(self, scope: Construct, construct_id: str, *, alg: str, alias_prefix: str = "") -> None:
        super().__init__(scope, construct_id)
        self.alg = alg
        self.alias_prefix = alias_prefix
        self.key = kms.Key(
            self,
            "Key",
            description=f"agent-auth access token signing key ({alg})",
            key_spec=kms.KeySpec[KEY_SPEC[alg]],
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            # Deleting the key would make every token it signed unverifiable, and it cannot be recreated.
            removal_policy=RemovalPolicy.RETAIN,
        )
        if alias_prefix:
            kms.Alias(self, "Alias", alias_name=f"{alias_prefix}/{INITIAL_KEY_ALIAS}", target_key=self.key)

    @property
    def key_arn(self) -> str:
        return self.key.key_arn

    @property
    def alias_pattern(self) -> str:
        """What kms:ResourceAliases must match for a function to use a rotated key."""
        return f"{self.alias_prefix}/*"


class ApprovalKey(Construct):
    """The KMS HMAC key that signs approval links: the notifier may GenerateMac, approvals VerifyMac."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="agent-auth approval link key (HMAC_SHA_256)",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            # Links in unread email stop working if the key goes; it holds no data worth keeping otherwise.
            removal_policy=RemovalPolicy.DESTROY,
        )

    @property
    def key_arn(self) -> str:
        return self.key.key_arn
