"""Tokens we issue are checked by our own validator; client assertions name exactly one audience.

Given a deployment on moto, when the token handler issues a token, then the validator that exchange and
introspection use accepts it with the keys /jwks.json publishes (RS256 and ES256 from KMS). A client
assertion whose `aud` names us and someone else is refused (RFC 7523bis, the 2025 audience-injection
attacks), and one typed as an access token is never a client assertion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_auth import wiring
from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import SystemClock
from agent_auth.handlers import token
from agent_auth.oauth.tokens.validator import AccessTokenValidator
from tests.conftest import ISSUER, Deployment, make_deployment
from tests.support import JWT_BEARER, ClientKey, form, post_event

TOKEN_URL = f"{ISSUER}/token"


def call(body: str) -> tuple[int, dict[str, Any]]:
    result = token.lambda_handler(post_event(body), None)
    return result["statusCode"], json.loads(result["body"])


def validator(deployment: Deployment) -> AccessTokenValidator:
    keys = wiring.public_keys(deployment.settings, deployment.clients)
    return AccessTokenValidator(issuer=ISSUER, keys=keys, clock=SystemClock())


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_issued_tokens_pass_our_own_validator(
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_keys: dict[str, ClientKey],
    alg: str,
) -> None:
    deployment = make_deployment(aws, monkeypatch, tmp_path, client_keys, alg=alg)
    status, body = call(
        form(
            grant_type="client_credentials",
            client_id="billing-agent",
            client_secret=deployment.secrets["billing-agent"],
            scope="billing.invoices.read",
        )
    )
    assert status == 200
    checked = validator(deployment).validate(body["access_token"])
    assert checked.subject == checked.client_id == "billing-agent"
    assert checked.audience == "https://billing.example.com" and checked.scopes == ("billing.invoices.read",)


def assertion_request(deployment: Deployment, **overrides: Any) -> tuple[int, dict[str, Any]]:
    key = deployment.keys["rsa"]
    assertion = key.assertion("signing-agent", overrides.pop("aud", TOKEN_URL), **overrides)
    return call(
        form(grant_type="client_credentials", client_assertion_type=JWT_BEARER, client_assertion=assertion)
    )


def test_an_assertion_for_us_and_another_audience_is_refused(deployment: Deployment) -> None:
    status, body = assertion_request(deployment, aud=[ISSUER, "https://other.example.com"])
    assert status == 401 and body["error"] == "invalid_client"
    assert deployment.audit_records()[0]["reason"] == "assertion_audience"


@pytest.mark.parametrize(
    "aud", [[ISSUER], [TOKEN_URL], ISSUER], ids=["array-issuer", "array-token", "string"]
)
def test_a_single_audience_may_be_a_string_or_an_array_of_one(deployment: Deployment, aud: Any) -> None:
    assert assertion_request(deployment, aud=aud)[0] == 200


def test_an_empty_audience_array_is_refused(deployment: Deployment) -> None:
    assert assertion_request(deployment, aud=[])[0] == 401


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "secevent+jwt"])
def test_an_assertion_typed_as_something_else_is_refused(deployment: Deployment, typ: str) -> None:
    status, _ = assertion_request(deployment, headers={"typ": typ})
    assert status == 401
    assert deployment.audit_records()[0]["reason"] == "assertion_typ"


@pytest.mark.parametrize("typ", ["JWT", "client-authentication+jwt"])
def test_jwt_assertion_types_are_accepted(deployment: Deployment, typ: str) -> None:
    assert assertion_request(deployment, headers={"typ": typ})[0] == 200


def test_a_public_agent_cannot_use_client_credentials(deployment: Deployment) -> None:
    """auth: none proves nothing; only a grant that proves the client another way (PKCE) may accept it."""
    status, body = call(form(grant_type="client_credentials", client_id="public-app"))
    assert status == 401 and body["error"] == "invalid_client"
    record = deployment.audit_records()[0]
    assert record["reason"] == "no_client_authentication" and record["client_id"] == "public-app"


def test_an_unknown_client_id_is_audited_as_a_fingerprint(deployment: Deployment) -> None:
    secret_looking = "Zm9vYmFyYmF6cXV4c2VjcmV0LXZhbHVlLTEyMzQ1Njc4"
    status, _ = call(form(grant_type="client_credentials", client_id=secret_looking, client_secret="x"))
    assert status == 401
    record = deployment.audit_records()[0]
    assert record["client_id"].startswith("unverified:") and secret_looking not in json.dumps(
        record, default=str
    )
