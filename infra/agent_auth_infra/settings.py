"""What an operator may choose at deploy time, read from CDK context (cdk.json or `cdk deploy -c KEY=VALUE`).

Values given with `-c` arrive as strings, values from cdk.json as JSON; both are accepted. A bad value
stops the synth with a message naming the context key, before anything is deployed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aws_cdk import aws_logs as logs
from constructs import Node

from agent_auth import config

# Context keys. cdk.json lists each one with its default.
STACK_NAME = "stackName"
SIGNING_ALG = "signingAlg"
PREVIOUS_SIGNING_KEY_ARNS = "previousSigningKeyArns"
SIGNING_KEY_ROTATION = "signingKeyRotation"
TOKEN_LIFETIME_SECONDS = "tokenLifetimeSeconds"
AUDIT_RETENTION_DAYS = "auditRetentionDays"
LAMBDA_MEMORY_SIZE = "lambdaMemorySize"
API_GATEWAY_CLOUD_WATCH_ROLE = "apiGatewayCloudWatchRole"
MAIL_FROM = "mailFrom"
UPSTREAM_ISSUER = "upstreamIssuer"
UPSTREAM_CLIENT_ID = "upstreamClientId"
UPSTREAM_CLIENT_SECRET_ARN = "upstreamClientSecretArn"
UPSTREAM_GROUPS_CLAIM = "upstreamGroupsClaim"
COGNITO_DOMAIN_PREFIX = "cognitoDomainPrefix"
STAGE = "stage"
LOG_RETENTION_DAYS = "logRetentionDays"
ALARM_EMAIL = "alarmEmail"
WAF = "waf"
DOMAIN_NAME = "domainName"
CERTIFICATE_ARN = "certificateArn"
HOSTED_ZONE_ID = "hostedZoneId"
AUDIT_EXPORT_DAYS = "auditExportDays"
AUDIT_OBJECT_LOCK = "auditObjectLock"
RESERVED_CONCURRENCY = "reservedConcurrency"

COGNITO_GROUPS_CLAIM = "cognito:groups"
"""Where Cognito lists a user's groups in the ID token."""
SECRET_ARN_PATTERN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}"
"""A complete secret ARN, with the six characters Secrets Manager appends: IAM grants on exactly it."""
DOMAIN_PREFIX_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
STAGE_PATTERN = r"[A-Za-z0-9_]{1,64}"
"""API Gateway's rule for stage names."""
DOMAIN_NAME_PATTERN = r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
CERTIFICATE_ARN_PATTERN = r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}"
HOSTED_ZONE_ID_PATTERN = r"Z[A-Z0-9]{1,31}"
RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
"""The retention periods CloudWatch Logs accepts."""
LOG_RETENTION_CHOICES = tuple(RETENTION_DAYS)


class ContextError(ValueError):
    pass


@dataclass(frozen=True)
class DeploymentSettings:
    stack_name: str = "AgentAuth"
    signing_alg: str = config.Settings.signing_alg
    previous_signing_key_arns: tuple[str, ...] = ()
    """Keys that signed tokens still in circulation: published in the JWKS until those tokens expire. For keys
    outside the rotating key set, e.g. the stack's former key after a change of signingAlg replaced it."""
    signing_key_rotation: bool = True
    """Signing keys rotate without a redeploy (`agent-auth keys rotate --stack`, docs/key-rotation.md): the
    functions read the key set from the agents table and may use keys behind the stack's alias prefix.
    On by default (issue 10: rotation must not need a redeploy); `false` opts out, before any rotation."""
    token_lifetime_seconds: int = config.DEFAULT_TOKEN_LIFETIME
    audit_retention_days: int = config.Settings.audit_retention_days
    lambda_memory_size: int = 512
    mail_from: str = "approvals@example.com"
    """The sender of approval email: an identity verified in SES in the stack's region."""
    api_gateway_cloud_watch_role: bool = True
    """API Gateway needs an account-wide role to write stage logs. Turn this off when the account (in this
    region) already has one configured, so this stack does not take over the account setting."""
    upstream_issuer: str = ""
    """The OpenID provider users sign in with (docs/identity-providers.md); empty: the stack's own
    Cognito user pool."""
    upstream_client_id: str = ""
    upstream_client_secret_arn: str = ""
    """The Secrets Manager secret that holds the provider's client secret (never context itself)."""
    upstream_groups_claim: str = ""
    """The ID token claim listing groups; empty: `groups`, or `cognito:groups` for the Cognito default."""
    cognito_domain_prefix: str = ""
    """The Cognito domain's prefix (globally unique in the region); empty: derived from the stack."""
    stage: str = "v1"
    """The API stage, the last segment of the issuer (https://HOST/STAGE) without a custom domain."""
    log_retention_days: int = 90
    """Function logs and API access logs; one of LOG_RETENTION_CHOICES."""
    alarm_email: str = ""
    """Who the alarms email (SNS asks the address to confirm); empty: the topic has no subscriber."""
    waf: bool = False
    """A WAF web ACL on the stage, with rate-based rules per source address (costs per ACL and rule)."""
    domain_name: str = ""
    """A custom domain (e.g. auth.example.com) for the issuer; needs certificate_arn."""
    certificate_arn: str = ""
    """An ACM certificate for domain_name, in the stack's region (a regional endpoint)."""
    hosted_zone_id: str = ""
    """The Route 53 zone of domain_name, to add the alias record; empty: point your DNS yourself."""
    audit_export_days: int = 2557
    """How long exported audit records stay in S3 (seven years), whatever the table keeps."""
    audit_object_lock: bool = False
    """S3 Object Lock in compliance mode on the export: nobody, root included, deletes a record early."""
    reserved_concurrency: tuple[tuple[str, int], ...] = ()
    """Function name -> reserved concurrent executions; empty: none reserved (see docs/deploy.md)."""

    @property
    def signing_key_alias_prefix(self) -> str:
        """Where `keys rotate` puts its keys' aliases; empty without rotation."""
        return config.key_alias_prefix(self.stack_name) if self.signing_key_rotation else ""

    @property
    def uses_cognito(self) -> bool:
        return not self.upstream_issuer

    @property
    def groups_claim(self) -> str:
        default = COGNITO_GROUPS_CLAIM if self.uses_cognito else "groups"
        return self.upstream_groups_claim or default

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
        upstream = _upstream(get)
        return cls(
            **upstream,
            stack_name=str(get(STACK_NAME, defaults.stack_name)),
            signing_alg=alg,
            previous_signing_key_arns=_arns(get(PREVIOUS_SIGNING_KEY_ARNS, [])),
            signing_key_rotation=_bool(
                SIGNING_KEY_ROTATION, get(SIGNING_KEY_ROTATION, defaults.signing_key_rotation)
            ),
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
            **_operations(get, defaults),
        )


def _upstream(get: Callable[[str, Any], Any]) -> dict[str, Any]:
    """The provider: all of issuer, client id and secret ARN, or none of them (Cognito, made here)."""
    issuer, client_id, secret_arn, groups_claim, domain_prefix = (
        _text(key, get(key, ""))
        for key in (
            UPSTREAM_ISSUER,
            UPSTREAM_CLIENT_ID,
            UPSTREAM_CLIENT_SECRET_ARN,
            UPSTREAM_GROUPS_CLAIM,
            COGNITO_DOMAIN_PREFIX,
        )
    )
    if issuer:
        _https_url(UPSTREAM_ISSUER, issuer)
        for key, value in ((UPSTREAM_CLIENT_ID, client_id), (UPSTREAM_CLIENT_SECRET_ARN, secret_arn)):
            if not value:
                raise ContextError(f"context {key} is required with {UPSTREAM_ISSUER}")
        if not re.fullmatch(SECRET_ARN_PATTERN, secret_arn):
            raise ContextError(
                f"context {UPSTREAM_CLIENT_SECRET_ARN} must be the complete ARN of a Secrets Manager "
                f"secret (ending in its six-character suffix), got {secret_arn!r}"
            )
        if domain_prefix:
            raise ContextError(f"context {COGNITO_DOMAIN_PREFIX} is for the Cognito default only")
    else:
        for key, value in ((UPSTREAM_CLIENT_ID, client_id), (UPSTREAM_CLIENT_SECRET_ARN, secret_arn)):
            if value:
                raise ContextError(f"context {key} needs {UPSTREAM_ISSUER}: without it, Cognito is used")
        if domain_prefix and not valid_domain_prefix(domain_prefix):
            raise ContextError(
                f"context {COGNITO_DOMAIN_PREFIX} must be 1-63 lowercase letters, digits and inner hyphens, "
                f"without aws, amazon or cognito, got {domain_prefix!r}"
            )
    return {
        "upstream_issuer": issuer,
        "upstream_client_id": client_id,
        "upstream_client_secret_arn": secret_arn,
        "upstream_groups_claim": groups_claim,
        "cognito_domain_prefix": domain_prefix,
    }


def valid_domain_prefix(prefix: str) -> bool:
    """Cognito's rule for its own domains: no reserved words, DNS label characters only."""
    reserved = any(word in prefix for word in ("aws", "amazon", "cognito"))
    return not reserved and re.fullmatch(DOMAIN_PREFIX_PATTERN, prefix) is not None


def _text(key: str, value: Any) -> str:
    """A single token: an id, ARN, URL or claim name never holds whitespace."""
    if not isinstance(value, str) or any(c.isspace() for c in value.strip()):
        raise ContextError(f"context {key} must be a string without spaces, got {value!r}")
    return value.strip()


def _https_url(key: str, value: str) -> None:
    """An issuer identifier is an https URL with no query or fragment (OpenID Connect Discovery §2);
    it is kept exactly as given, since the provider's discovery document must name it identically."""
    url = urlsplit(value)
    if url.scheme != "https" or not url.hostname or url.query or url.fragment or "@" in url.netloc:
        raise ContextError(f"context {key} must be an https URL without query or fragment, got {value!r}")


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) <= 0:
        raise ContextError(f"context {key} must be a positive integer, got {value!r}")
    return int(value)


def _email(key: str, value: Any) -> str:
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


def _operations(get: Callable[[str, Any], Any], defaults: DeploymentSettings) -> dict[str, Any]:
    """Stage, logs, alarms, WAF, custom domain, audit export and concurrency."""
    stage = _text(STAGE, get(STAGE, defaults.stage))
    if not re.fullmatch(STAGE_PATTERN, stage):
        raise ContextError(f"context {STAGE} must be 1-64 letters, digits or underscores, got {stage!r}")
    retention = _positive_int(LOG_RETENTION_DAYS, get(LOG_RETENTION_DAYS, defaults.log_retention_days))
    if retention not in LOG_RETENTION_CHOICES:
        raise ContextError(
            f"context {LOG_RETENTION_DAYS} must be one of {', '.join(map(str, LOG_RETENTION_CHOICES))}, "
            f"got {retention}"
        )
    alarm_email = _text(ALARM_EMAIL, get(ALARM_EMAIL, ""))
    if alarm_email:
        alarm_email = _email(ALARM_EMAIL, alarm_email)
    domain, certificate, zone = (
        _text(key, get(key, "")) for key in (DOMAIN_NAME, CERTIFICATE_ARN, HOSTED_ZONE_ID)
    )
    if domain:
        if not re.fullmatch(DOMAIN_NAME_PATTERN, domain):
            raise ContextError(f"context {DOMAIN_NAME} must be a lowercase DNS name, got {domain!r}")
        if not re.fullmatch(CERTIFICATE_ARN_PATTERN, certificate):
            raise ContextError(
                f"context {CERTIFICATE_ARN} must be the ARN of an ACM certificate for {domain}, got "
                f"{certificate!r}"
            )
        if zone and not re.fullmatch(HOSTED_ZONE_ID_PATTERN, zone):
            raise ContextError(f"context {HOSTED_ZONE_ID} must be a Route 53 zone id, got {zone!r}")
    else:
        for key, value in ((CERTIFICATE_ARN, certificate), (HOSTED_ZONE_ID, zone)):
            if value:
                raise ContextError(f"context {key} needs {DOMAIN_NAME}")
    return {
        "stage": stage,
        "log_retention_days": retention,
        "alarm_email": alarm_email,
        "waf": _bool(WAF, get(WAF, defaults.waf)),
        "domain_name": domain,
        "certificate_arn": certificate,
        "hosted_zone_id": zone,
        "audit_export_days": _positive_int(
            AUDIT_EXPORT_DAYS, get(AUDIT_EXPORT_DAYS, defaults.audit_export_days)
        ),
        "audit_object_lock": _bool(AUDIT_OBJECT_LOCK, get(AUDIT_OBJECT_LOCK, defaults.audit_object_lock)),
        "reserved_concurrency": _concurrency(get(RESERVED_CONCURRENCY, {})),
    }


def _concurrency(value: Any) -> tuple[tuple[str, int], ...]:
    """A JSON object (cdk.json) or `-c reservedConcurrency=token=50,approvals=5`."""
    from agent_auth import routes

    if isinstance(value, str):
        pairs = [item.partition("=")[::2] for item in value.split(",") if item.strip()]
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise ContextError(
            f"context {RESERVED_CONCURRENCY} must map function names to numbers, got {value!r}"
        )
    names = {spec.name for spec in routes.ALL_FUNCTIONS}
    result = []
    for key, count in pairs:
        name = str(key).strip()
        if name not in names:
            raise ContextError(
                f"context {RESERVED_CONCURRENCY} names {name!r}, not one of {', '.join(sorted(names))}"
            )
        result.append((name, _positive_int(f"{RESERVED_CONCURRENCY}.{name}", count)))
    return tuple(sorted(result))


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK value for a validated number of days (one of LOG_RETENTION_CHOICES)."""
    return RETENTION_DAYS[days]
