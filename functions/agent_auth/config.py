"""Configuration as a typed model, read from the environment when a function first needs it.

Nothing here runs at import time and nothing has a silent default for a resource name: a missing
table or key is a startup error naming the variable, not a request against a table called "NONE".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent_auth import schema
from agent_auth.oauth.throttle import DEFAULT_AGENT_FAILURES, DEFAULT_SOURCE_FAILURES, DEFAULT_WINDOW

SIGNING_ALGORITHMS = ("RS256", "ES256")
KEY_SPEC = {"RS256": "RSA_2048", "ES256": "ECC_NIST_P256"}
"""The KMS key spec that signs each algorithm (the CDK stack and the development server create it)."""
DEFAULT_TOKEN_LIFETIME = 900
INITIAL_KEY_ALIAS = "initial"
"""With key rotation, the deployment's first key is `<alias prefix>/initial`; `keys rotate` names each new
one `<alias prefix>/<UTC time>`. The functions may use only keys behind `<alias prefix>/*`."""
DEV_KEY_ALIAS_PREFIX = "alias/agent-auth/dev/signing"


def key_alias_prefix(stack_name: str) -> str:
    """The alias prefix of a stack's signing keys: per stack, so one stack's functions never sign with
    another's keys."""
    return f"alias/agent-auth/{stack_name}/signing"


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    issuer: str
    region: str
    agents_table: str
    replay_table: str
    audit_table: str
    requests_table: str
    grants_table: str
    signins_table: str
    codes_table: str
    refresh_table: str
    consents_table: str
    signing_key_arn: str
    signing_alg: str = "RS256"
    previous_signing_key_arns: tuple[str, ...] = ()
    """Keys outside the rotating key set that still verify tokens in circulation (context
    previousSigningKeyArns, e.g. after a redeploy replaced the stack's key): published, never used to sign."""
    signing_key_alias_prefix: str = ""
    """Set when signing keys rotate (`agent-auth keys rotate`): the token and well-known functions read the
    key set from the agents table (signing_keys.py) instead of trusting SIGNING_KEY_ARN alone, and may use
    only keys behind an alias under this prefix. Empty: SIGNING_KEY_ARN signs, as deployed."""
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    audit_retention_days: int = 400
    approval_key_arn: str = ""
    """The KMS HMAC key for approval links: only the notifier and the approval function need it."""
    mail_from: str = ""
    """The sender of approval email (an SES-verified identity): only the notifier needs it."""
    upstream_issuer: str = ""
    """The OpenID provider users sign in with (delegated access): only the authorize function needs it."""
    upstream_client_id: str = ""
    upstream_client_secret: str = field(default="", repr=False)
    """The client secret itself: only the development server sets it. On AWS it is never in the
    environment; the authorize function reads it from Secrets Manager (upstream_client_secret_arn)."""
    upstream_client_secret_arn: str = ""
    """The Secrets Manager secret holding the client secret (the CDK stack sets it)."""
    upstream_groups_claim: str = "groups"
    """The ID token claim listing the user's groups (Cognito: cognito:groups)."""
    throttle_table: str = ""
    """Failed client authentications (schema.THROTTLE): only the client endpoints need it."""
    revocations_table: str = ""
    """Revoked tokens and refresh families (schema.REVOCATIONS): only the lifecycle function needs it."""
    auth_failures_per_agent: int = DEFAULT_AGENT_FAILURES
    auth_failures_per_source: int = DEFAULT_SOURCE_FAILURES
    auth_failure_window: int = DEFAULT_WINDOW
    """Failed client authentications allowed per agent and per source address in a window of this many
    seconds, before 429 (oauth/throttle.py says why the two limits default to the same number)."""

    def require(self, name: str) -> str:
        value = str(getattr(self, name))
        if not value:
            raise ConfigError(f"environment variable {name.upper()} is required by this function")
        return value

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ConfigError(f"environment variable {name} is required")
            return value

        def positive_int(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) <= 0:
                raise ConfigError(f"environment variable {name} must be a positive integer, got {raw!r}")
            return int(raw)

        alg = env.get("SIGNING_ALG", "RS256").strip() or "RS256"
        if alg not in SIGNING_ALGORITHMS:
            raise ConfigError(f"SIGNING_ALG must be one of {', '.join(SIGNING_ALGORITHMS)}, got {alg!r}")
        issuer = required("ISSUER").rstrip("/")
        previous = tuple(a for a in env.get("PREVIOUS_SIGNING_KEY_ARNS", "").split(",") if a.strip())
        return cls(
            issuer=issuer,
            region=required("AWS_REGION"),
            agents_table=required(schema.AGENTS.env_var),
            replay_table=required(schema.REPLAY.env_var),
            audit_table=required(schema.AUDIT.env_var),
            requests_table=required(schema.REQUESTS.env_var),
            grants_table=required(schema.GRANTS.env_var),
            signins_table=required(schema.SIGN_INS.env_var),
            codes_table=required(schema.CODES.env_var),
            refresh_table=required(schema.REFRESH.env_var),
            consents_table=required(schema.CONSENTS.env_var),
            signing_key_arn=required("SIGNING_KEY_ARN"),
            signing_alg=alg,
            previous_signing_key_arns=previous,
            signing_key_alias_prefix=env.get("SIGNING_KEY_ALIAS_PREFIX", "").strip().rstrip("/"),
            token_lifetime=positive_int("TOKEN_LIFETIME_SECONDS", DEFAULT_TOKEN_LIFETIME),
            audit_retention_days=positive_int("AUDIT_RETENTION_DAYS", 400),
            approval_key_arn=env.get("APPROVAL_KEY_ARN", "").strip(),
            mail_from=env.get("MAIL_FROM", "").strip(),
            upstream_issuer=env.get("UPSTREAM_ISSUER", "").strip(),
            upstream_client_id=env.get("UPSTREAM_CLIENT_ID", "").strip(),
            upstream_client_secret=env.get("UPSTREAM_CLIENT_SECRET", "").strip(),
            upstream_client_secret_arn=env.get("UPSTREAM_CLIENT_SECRET_ARN", "").strip(),
            upstream_groups_claim=env.get("UPSTREAM_GROUPS_CLAIM", "").strip() or "groups",
            throttle_table=env.get(schema.THROTTLE.env_var, "").strip(),
            revocations_table=env.get(schema.REVOCATIONS.env_var, "").strip(),
            auth_failures_per_agent=positive_int("AUTH_FAILURES_PER_AGENT", DEFAULT_AGENT_FAILURES),
            auth_failures_per_source=positive_int("AUTH_FAILURES_PER_SOURCE", DEFAULT_SOURCE_FAILURES),
            auth_failure_window=positive_int("AUTH_FAILURE_WINDOW_SECONDS", DEFAULT_WINDOW),
        )

    def to_env(self) -> dict[str, str]:
        """The inverse of from_env: what the CDK stack and the development server set. The client secret
        is left out unless there is one (the development server's), so no deployed function is given
        even an empty UPSTREAM_CLIENT_SECRET."""
        secret = self.upstream_client_secret
        secret_env = {"UPSTREAM_CLIENT_SECRET": secret} if secret else {}
        # Only when keys rotate: a deployment without rotation keeps exactly the environment it had.
        prefix = self.signing_key_alias_prefix
        rotation_env = {"SIGNING_KEY_ALIAS_PREFIX": prefix} if prefix else {}
        return {
            "ISSUER": self.issuer,
            "AWS_REGION": self.region,
            schema.AGENTS.env_var: self.agents_table,
            schema.REPLAY.env_var: self.replay_table,
            schema.AUDIT.env_var: self.audit_table,
            schema.REQUESTS.env_var: self.requests_table,
            schema.GRANTS.env_var: self.grants_table,
            schema.SIGN_INS.env_var: self.signins_table,
            schema.CODES.env_var: self.codes_table,
            schema.REFRESH.env_var: self.refresh_table,
            schema.CONSENTS.env_var: self.consents_table,
            schema.THROTTLE.env_var: self.throttle_table,
            schema.REVOCATIONS.env_var: self.revocations_table,
            "SIGNING_KEY_ARN": self.signing_key_arn,
            "SIGNING_ALG": self.signing_alg,
            "PREVIOUS_SIGNING_KEY_ARNS": ",".join(self.previous_signing_key_arns),
            **rotation_env,
            "TOKEN_LIFETIME_SECONDS": str(self.token_lifetime),
            "AUDIT_RETENTION_DAYS": str(self.audit_retention_days),
            "APPROVAL_KEY_ARN": self.approval_key_arn,
            "MAIL_FROM": self.mail_from,
            "UPSTREAM_ISSUER": self.upstream_issuer,
            "UPSTREAM_CLIENT_ID": self.upstream_client_id,
            **secret_env,
            "UPSTREAM_CLIENT_SECRET_ARN": self.upstream_client_secret_arn,
            "UPSTREAM_GROUPS_CLAIM": self.upstream_groups_claim,
            "AUTH_FAILURES_PER_AGENT": str(self.auth_failures_per_agent),
            "AUTH_FAILURES_PER_SOURCE": str(self.auth_failures_per_source),
            "AUTH_FAILURE_WINDOW_SECONDS": str(self.auth_failure_window),
        }
