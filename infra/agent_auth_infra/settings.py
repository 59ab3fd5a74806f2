"""What an operator may choose at deploy time, read from CDK context (cdk.json or `cdk deploy -c KEY=VALUE`).

Values given with `-c` arrive as strings, values from cdk.json as JSON; both are accepted. A bad value
stops the synth with a message naming the context key, before anything is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Node

from agent_auth import config

# Context keys. cdk.json lists each one with its default.
STACK_NAME = "stackName"
SIGNING_ALG = "signingAlg"
PREVIOUS_SIGNING_KEY_ARNS = "previousSigningKeyArns"
TOKEN_LIFETIME_SECONDS = "tokenLifetimeSeconds"
AUDIT_RETENTION_DAYS = "auditRetentionDays"
LAMBDA_MEMORY_SIZE = "lambdaMemorySize"
API_GATEWAY_CLOUD_WATCH_ROLE = "apiGatewayCloudWatchRole"
MAIL_FROM = "mailFrom"


class ContextError(ValueError):
    pass


@dataclass(frozen=True)
class DeploymentSettings:
    stack_name: str = "AgentAuth"
    signing_alg: str = config.Settings.signing_alg
    previous_signing_key_arns: tuple[str, ...] = ()
    """Keys that signed tokens still in circulation: published in the JWKS until those tokens expire."""
    token_lifetime_seconds: int = config.DEFAULT_TOKEN_LIFETIME
    audit_retention_days: int = config.Settings.audit_retention_days
    lambda_memory_size: int = 512
    mail_from: str = "approvals@example.com"
    """The sender of approval email: an identity verified in SES in the stack's region."""
    api_gateway_cloud_watch_role: bool = True
    """API Gateway needs an account-wide role to write stage logs. Turn this off when the account (in this
    region) already has one configured, so this stack does not take over the account setting."""

    @classmethod
    def from_context(cls, node: Node) -> DeploymentSettings:
        defaults = cls()

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        alg = str(get(SIGNING_ALG, defaults.signing_alg))
        if alg not in config.SIGNING_ALGORITHMS:
            raise ContextError(
                f"context {SIGNING_ALG} must be one of {', '.join(config.SIGNING_ALGORITHMS)}, got {alg!r}"
            )
        return cls(
            stack_name=str(get(STACK_NAME, defaults.stack_name)),
            signing_alg=alg,
            previous_signing_key_arns=_arns(get(PREVIOUS_SIGNING_KEY_ARNS, [])),
            token_lifetime_seconds=_positive_int(
                TOKEN_LIFETIME_SECONDS, get(TOKEN_LIFETIME_SECONDS, defaults.token_lifetime_seconds)
            ),
            audit_retention_days=_positive_int(
                AUDIT_RETENTION_DAYS, get(AUDIT_RETENTION_DAYS, defaults.audit_retention_days)
            ),
            lambda_memory_size=_positive_int(
                LAMBDA_MEMORY_SIZE, get(LAMBDA_MEMORY_SIZE, defaults.lambda_memory_size)
            ),
            mail_from=_email(MAIL_FROM, get(MAIL_FROM, defaults.mail_from)),
            api_gateway_cloud_watch_role=_bool(
                API_GATEWAY_CLOUD_WATCH_ROLE,
                get(API_GATEWAY_CLOUD_WATCH_ROLE, defaults.api_gateway_cloud_watch_role),
            ),
        )


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) <= 0:
        raise ContextError(f"context {key} must be a positive integer, got {value!r}")
    return int(value)


def _email(key: str, value: Any) -> str:
    import re

    from agent_auth.names import EMAIL_PATTERN

    if not isinstance(value, str) or not re.match(EMAIL_PATTERN, value):
        raise ContextError(f"context {key} must be an email address verified in SES, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise ContextError(f"context {key} must be true or false, got {value!r}")


def _arns(value: Any) -> tuple[str, ...]:
    """A JSON list (cdk.json) or a comma-separated string (`-c previousSigningKeyArns=arn1,arn2`)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ContextError(f"context {PREVIOUS_SIGNING_KEY_ARNS} must be a list of key ARNs, got {value!r}")
    arns = tuple(str(item).strip() for item in items if str(item).strip())
    for arn in arns:
        if not arn.startswith("arn:") or ":kms:" not in arn or ":key/" not in arn:
            raise ContextError(
                f"context {PREVIOUS_SIGNING_KEY_ARNS} holds {arn!r}, which is not a KMS key ARN"
            )
    return arns
