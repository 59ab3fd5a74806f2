"""Delegated access on AWS: a Cognito user pool by default, any OpenID provider from context instead.

Either way only the authorize function may read the client secret, and it is told where the secret is
(UPSTREAM_CLIENT_SECRET_ARN), never the secret itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from agent_auth import routes, schema

from .synthesis import Synthesized, synthesize
from .test_validation import CFN_LINT_ACCEPTED, CFN_LINT_REGIONS

ISSUER = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:agent-auth/upstream-AbCdEf"
UPSTREAM_CONTEXT = {
    "upstreamIssuer": ISSUER,
    "upstreamClientId": "11111111-2222-3333-4444-555555555555",
    "upstreamClientSecretArn": SECRET_ARN,
}


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app deployed against another provider (context upstreamIssuer and friends)
    return synthesize(tmp_path_factory.mktemp("external"), UPSTREAM_CONTEXT)


def only(synth: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = synth.of_type(resource_type).items()
    return logical_id, resource["Properties"]


def authorize_env(synth: Synthesized) -> dict[str, Any]:
    return synth.environment(synth.function_id(routes.AUTHORIZE))


def secret_grants(synth: Synthesized) -> dict[str, list[Any]]:
    """Every secretsmanager statement in the template, by the role(s) it applies to."""
    found: dict[str, list[Any]] = {}
    for roles, document in synth.policy_documents():
        for statement in _as_list(document["Statement"]):
            actions = _as_list(statement["Action"])
            if any(a.lower().startswith(("secretsmanager:", "*")) for a in actions):
                for role in roles:
                    found.setdefault(role, []).append((actions, statement["Resource"]))
    return found


def test_a_user_pool_for_the_company_users_by_default(synth: Synthesized) -> None:
    # Given the default app / Then there is one user pool where only administrators create users, who
    # sign in with their email address, a strong password and a TOTP second factor
    _, pool = only(synth, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["MfaConfiguration"] == "ON"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    # And threat protection blocks risky and compromised-credential sign-ins
    assert pool["UserPoolTier"] == "PLUS"
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_the_app_client_is_code_grant_only_back_to_the_callback(synth: Synthesized) -> None:
    # Given the user pool's only client
    pool_id, _ = only(synth, "AWS::Cognito::UserPool")
    _, client = only(synth, "AWS::Cognito::UserPoolClient")

    # Then it is confidential, for the authorization code grant only, with scopes openid and email
    assert client["UserPoolId"] == {"Ref": pool_id}
    assert client["GenerateSecret"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthScopes"] == ["openid", "email"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert not {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"} & set(
        client["ExplicitAuthFlows"]
    )
    # And its only callback is {issuer}/authorize/callback, the issuer being the URL the stack publishes
    issuer = synth.template["Outputs"][schema.ISSUER_OUTPUT]["Value"]["Fn::Join"][1]
    (callback,) = client["CallbackURLs"]
    assert callback["Fn::Join"][1] == [*issuer[:-1], issuer[-1] + "/authorize/callback"]


def test_the_cognito_domain_is_derived_from_the_stack_or_chosen(
    synth: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, domain = only(synth, "AWS::Cognito::UserPoolDomain")
    assert domain["Domain"] == {"Fn::Join": ["", ["agentauth-", {"Ref": "AWS::AccountId"}]]}
    chosen = synthesize(tmp_path_factory.mktemp("domain"), {"cognitoDomainPrefix": "acme-agents"})
    assert only(chosen, "AWS::Cognito::UserPoolDomain")[1]["Domain"] == "acme-agents"


def test_the_client_secret_is_copied_into_secrets_manager_by_reference(synth: Synthesized) -> None:
    # Given the one secret of the stack
    client_id, _ = only(synth, "AWS::Cognito::UserPoolClient")
    _, secret = only(synth, "AWS::SecretsManager::Secret")

    # Then CloudFormation fills it from the client's ClientSecret at deploy time: the template holds only
    # the reference, and no custom resource (another Lambda function) reads the client
    assert secret["SecretString"] == {"Fn::GetAtt": [client_id, "ClientSecret"]}
    assert not [t for t in {r["Type"] for r in synth.resources.values()} if t.startswith("Custom::")]


def test_the_authorize_function_is_told_the_cognito_provider(synth: Synthesized) -> None:
    pool_id, _ = only(synth, "AWS::Cognito::UserPool")
    client_id, _ = only(synth, "AWS::Cognito::UserPoolClient")
    secret_id, _ = only(synth, "AWS::SecretsManager::Secret")
    env = authorize_env(synth)
    assert env["UPSTREAM_ISSUER"] == {
        "Fn::Join": [
            "",
            [
                "https://cognito-idp.",
                {"Ref": "AWS::Region"},
                ".",
                {"Ref": "AWS::URLSuffix"},
                "/",
                {"Ref": pool_id},
            ],
        ]
    }
    assert env["UPSTREAM_CLIENT_ID"] == {"Ref": client_id}
    assert env["UPSTREAM_CLIENT_SECRET_ARN"] == {"Ref": secret_id}
    assert env["UPSTREAM_GROUPS_CLAIM"] == "cognito:groups"


@pytest.mark.parametrize("which", ["synth", "external"])
def test_no_function_is_given_the_secret_itself(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synthesized = request.getfixturevalue(which)
    for spec in routes.ALL_FUNCTIONS:
        env = synth.environment(synth.function_id(spec))
        assert "UPSTREAM_CLIENT_SECRET" not in env, spec.name
        # Nor the client's secret under another name: {"Fn::GetAtt": [client, "ClientSecret"]}
        assert '"ClientSecret"]' not in json.dumps(env), spec.name


def test_only_the_authorize_function_may_read_the_cognito_secret(synth: Synthesized) -> None:
    (secret_id,) = synth.of_type("AWS::SecretsManager::Secret")
    role = synth.role_id(synth.function_id(routes.AUTHORIZE))
    assert secret_grants(synth) == {role: [(["secretsmanager:GetSecretValue"], {"Ref": secret_id})]}


def test_another_provider_replaces_cognito(external: Synthesized) -> None:
    # Then nothing of Cognito is made, and no secret either: the operator's secret is used by its ARN
    types = {resource["Type"] for resource in external.resources.values()}
    assert not [t for t in types if t.startswith(("AWS::Cognito::", "AWS::SecretsManager::"))]
    # And the authorize function is told exactly the given provider, with the default groups claim
    env = authorize_env(external)
    assert env["UPSTREAM_ISSUER"] == ISSUER
    assert env["UPSTREAM_CLIENT_ID"] == UPSTREAM_CONTEXT["upstreamClientId"]
    assert env["UPSTREAM_CLIENT_SECRET_ARN"] == SECRET_ARN
    assert env["UPSTREAM_GROUPS_CLAIM"] == "groups"
    # And only it may read that one secret
    role = external.role_id(external.function_id(routes.AUTHORIZE))
    assert secret_grants(external) == {role: [(["secretsmanager:GetSecretValue"], SECRET_ARN)]}


def test_another_provider_passes_every_validation(external: Synthesized) -> None:
    assert external.violations() == []
    assert external.error is None
    (template,) = external.outdir.glob("*.template.json")
    findings = [m.rule.id for m in lint_file(template, ManualArgs(regions=CFN_LINT_REGIONS))]
    assert [rule for rule in findings if rule not in CFN_LINT_ACCEPTED] == []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
