"""Discovery metadata and JWKS through lambda_handler, against moto's KMS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.clock import OffsetClock
from agent_auth.handlers import wellknown
from tests.conftest import ISSUER, Deployment, make_deployment
from tests.support import ClientKey, load_event


def get(name: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    result = wellknown.lambda_handler(load_event(name), None)
    return result["statusCode"], result["headers"], json.loads(result["body"])


@pytest.mark.parametrize(
    "event", ["discovery_oauth_authorization_server.json", "discovery_openid_configuration.json"]
)
def test_metadata_lists_only_what_is_supported(deployment: Deployment, event: str) -> None:
    status, headers, body = get(event)
    assert status == 200 and "max-age" in headers["Cache-Control"]
    expected = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "access_request_endpoint": f"{ISSUER}/access-requests",
        "jwks_uri": f"{ISSUER}/jwks.json",
        "grant_types_supported": [
            "client_credentials",
            "urn:agent-auth:grant-type:access-request",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": ["openid", "offline_access"],
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "PS256", "RS256"],
        # Token lifecycle (RFC 7662, RFC 7009): authenticated agents only, so no `none`.
        "introspection_endpoint": f"{ISSUER}/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ],
        "introspection_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "PS256", "RS256"],
        "revocation_endpoint": f"{ISSUER}/revoke",
        "revocation_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "PS256", "RS256"],
    }
    if "openid" in event:  # OpenID Connect Discovery §3 adds what an OpenID provider must state
        expected |= {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email"],
        }
    assert body == expected


def test_jwks_publishes_the_kms_public_key_fetched_once_without_rotation(deployment: Deployment) -> None:
    # Given a deployment that opted out of key rotation (-c signingKeyRotation=false: no alias prefix)
    from collections import Counter

    from tests.support import recording_aws_calls

    with recording_aws_calls() as log:
        bodies = [get("jwks.json")[2] for _ in range(3)]
    # Then the former shape, exactly: one GetPublicKey per execution environment, nothing else
    assert log.calls == Counter({"kms:GetPublicKey": 1}), "the public key is fetched once per environment"
    [key] = bodies[0]["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert "d" not in key


def test_jwks_with_rotation_reads_the_key_set_item_once_a_minute_and_each_key_once(
    aws: AwsClients,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_keys: dict[str, ClientKey],
    clock: OffsetClock,
) -> None:
    # Changed when key rotation became the AWS default: three JWKS requests used to make exactly one
    # kms:GetPublicKey and nothing else. With rotation the function also reads which keys to publish: one
    # GetItem of the key set's item (keys#signing, the one item its IAM role may read, dynamodb:LeadingKeys)
    # per KEY_CACHE_SECONDS per execution environment, and still one GetPublicKey per published key.
    from collections import Counter

    from agent_auth.operations.keys import rotate_keys
    from agent_auth.signing_keys import KEY_CACHE_SECONDS
    from tests.integration.test_key_rotation import (
        KEY_SET_KEY,
        dynamodb_reads,
        key_target,
        make_rotating_deployment,
    )
    from tests.support import recording_aws_calls

    # Given a deployment as the stack deploys it by default
    deployment = make_rotating_deployment(aws, monkeypatch, tmp_path, client_keys)
    agents = deployment.settings.agents_table
    # When three JWKS requests are served / Then one key set read and one public key fetch, nothing else
    with recording_aws_calls() as log, dynamodb_reads() as reads:
        bodies = [get("jwks.json")[2] for _ in range(3)]
    assert log.calls == Counter({"dynamodb:GetItem": 1, "kms:GetPublicKey": 1})
    assert reads == [("GetItem", agents, KEY_SET_KEY)]
    [key] = bodies[0]["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert "d" not in key

    # When an operator rotates and the minute has passed / Then one more read, and one GetPublicKey for the
    # new key only (the first one's public half is kept), for three more requests
    rotate_keys(key_target(deployment, clock))
    clock.offset += KEY_CACHE_SECONDS
    with recording_aws_calls() as log, dynamodb_reads() as reads:
        bodies = [get("jwks.json")[2] for _ in range(3)]
    assert log.calls == Counter({"dynamodb:GetItem": 1, "kms:GetPublicKey": 1})
    assert reads == [("GetItem", agents, KEY_SET_KEY)]
    assert len(bodies[2]["keys"]) == 2 and key in bodies[2]["keys"]


def test_es256_deployment_publishes_an_ec_key_and_signs_raw_r_s(
    aws: AwsClients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_keys: dict[str, ClientKey]
) -> None:
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    from agent_auth.handlers import token
    from tests.support import form, post_event

    deployment = make_deployment(aws, monkeypatch, tmp_path, client_keys, alg="ES256")
    _, _, jwks = get("jwks.json")
    assert jwks["keys"][0]["kty"] == "EC" and jwks["keys"][0]["alg"] == "ES256"
    event = post_event(
        form(
            grant_type="client_credentials",
            client_id="billing-agent",
            client_secret=deployment.secrets["billing-agent"],
            scope="billing.invoices.read",
        )
    )
    body = json.loads(token.lambda_handler(event, None)["body"])
    decoded = jose_jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])
    assert decoded.claims["scope"] == "billing.invoices.read"
