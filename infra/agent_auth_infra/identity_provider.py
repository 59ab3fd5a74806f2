"""Who signs users in for delegated access: the stack's own Cognito user pool, or any OpenID provider.

agent-auth is the provider's relying party (docs/identity-providers.md). Either way the authorize
function is told the issuer, the client id, the groups claim and the ARN of the Secrets Manager secret
that holds the client secret; the secret itself is never in the template or an environment variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration, SecretValue, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from agent_auth_infra.nag import acknowledge
from agent_auth_infra.settings import (
    COGNITO_DOMAIN_PREFIX,
    ContextError,
    DeploymentSettings,
    valid_domain_prefix,
)

CALLBACK_PATH = "/authorize/callback"
PASSWORD_MIN_LENGTH = 12


@dataclass(frozen=True)
class Upstream:
    """What the authorize function needs to know about the provider."""

    issuer: str
    client_id: str
    client_secret: secretsmanager.ISecret
    groups_claim: str


def upstream_provider(scope: Construct, settings: DeploymentSettings, issuer: str) -> Upstream:
    """The configured provider (context upstreamIssuer), else a Cognito user pool made here.
    `issuer` is agent-auth's own: the provider sends users back to `{issuer}/authorize/callback`."""
    if settings.uses_cognito:
        return CognitoProvider(scope, "Cognito", settings=settings, issuer=issuer).upstream
    return Upstream(
        issuer=settings.upstream_issuer,
        client_id=settings.upstream_client_id,
        client_secret=secretsmanager.Secret.from_secret_complete_arn(
            scope, "UpstreamClientSecret", settings.upstream_client_secret_arn
        ),
        groups_claim=settings.groups_claim,
    )


def derived_domain_prefix(stack_name: str) -> str:
    """The stack's name as a DNS label (the account id is appended at deploy time for uniqueness)."""
    label = re.sub(r"[^a-z0-9-]+", "-", stack_name.lower()).strip("-")[:48].strip("-")
    if not valid_domain_prefix(label):
        raise ContextError(
            f"the stack name {stack_name!r} makes no valid Cognito domain prefix: set {COGNITO_DOMAIN_PREFIX}"
        )
    return label


class CognitoProvider(Construct):
    """A user pool for the company's users: created by an administrator (no self sign-up), signing in
    with their email address and a TOTP second factor, behind Cognito's threat protection."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, issuer: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            sign_in_aliases=cognito.SignInAliases(email=True, username=False),
            sign_in_case_sensitive=False,
            self_sign_up_enabled=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            keep_original=cognito.KeepOriginalAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            # Plus: threat protection blocks sign-ins with compromised credentials and risky attempts.
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
        )
        prefix = (
            settings.cognito_domain_prefix or f"{derived_domain_prefix(stack.stack_name)}-{stack.account}"
        )
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
        )
        self.client = self.user_pool.add_client(
            "AgentAuth",
            generate_secret=True,
            # Only the browser sign-in at the managed login pages (SRP there; no password flows here).
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(
                    authorization_code_grant=True, implicit_code_grant=False, client_credentials=False
                ),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[f"{issuer}{CALLBACK_PATH}"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            # agent-auth reads the ID token once, at the callback: it issues its own tokens after that.
            id_token_validity=Duration.minutes(5),
            access_token_validity=Duration.minutes(5),
            refresh_token_validity=Duration.hours(1),
            auth_session_validity=Duration.minutes(5),
        )
        cfn_client = self.client.node.default_child
        assert isinstance(cfn_client, cognito.CfnUserPoolClient)
        # The client's ClientSecret attribute, resolved by CloudFormation at deploy time: the template
        # holds only the reference, and no custom resource (another Lambda function) is needed.
        self.client_secret = secretsmanager.Secret(
            self,
            "ClientSecret",
            description="agent-auth: the Cognito app client's secret, read by the authorize function",
            secret_string_value=SecretValue.resource_attribute(cfn_client.attr_client_secret),
        )
        acknowledge(
            self.client_secret,
            "AwsSolutions-SMG4",
            "The secret is the Cognito app client's own generated secret, copied by CloudFormation; it "
            "changes only when Cognito issues a new one (replace the client), not by a rotation function.",
        )
        self.upstream = Upstream(
            issuer=f"https://cognito-idp.{stack.region}.{stack.url_suffix}/{self.user_pool.user_pool_id}",
            client_id=self.client.user_pool_client_id,
            client_secret=self.client_secret,
            groups_claim=settings.groups_claim,
        )
