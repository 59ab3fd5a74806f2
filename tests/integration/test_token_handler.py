"""POST /token through lambda_handler with API Gateway events, against moto (DynamoDB, KMS)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from agent_auth.handlers import token, wellknown
from tests.conftest import ISSUER, Deployment
from tests.support import JWT_BEARER, basic, form, load_event, with_body

TOKEN_URL = f"{ISSUER}/token"


def call(event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    result = token.lambda_handler(event, None)
    return result["statusCode"], result["headers"], json.loads(result["body"])


def post(body: str | bytes, **headers: str) -> dict[str, Any]:
    return with_body(load_event("token_client_secret_post.json"), body, **headers)


def verify(deployment: Deployment, access_token: str) -> dict[str, Any]:
    """Verify with an independent JOSE library (joserfc) against the published JWKS."""
    published = json.loads(wellknown.lambda_handler(load_event("jwks.json"), None)["body"])
    decoded = jose_jwt.decode(
        access_token, KeySet.import_key_set(published), algorithms=[deployment.settings.signing_alg]
    )
    assert decoded.header["typ"] == "at+jwt"
    return dict(decoded.claims)


class Snapshot:
    """The state a refused request must not change, and the audit records it must add (exactly one)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.state = self._state()
        self.audit = len(deployment.audit_records())

    def _state(self) -> tuple[Any, ...]:
        s = self.deployment.settings
        return tuple(sorted(map(repr, self.deployment.scan(t))) for t in (s.agents_table, s.replay_table))

    def assert_refused_once(self) -> dict[str, Any]:
        assert self._state() == self.state, "a refused request changed state"
        records = self.deployment.audit_records()
        assert len(records) == self.audit + 1, "expected exactly one audit record"
        assert records[0]["decision"] == "deny"
        return records[0]


# --- success -------------------------------------------------------------------------------------


def test_client_secret_basic_gets_a_verifiable_rfc9068_token(deployment: Deployment) -> None:
    # Given the support bot's secret, When it asks for a token with scope and resource
    event = with_body(
        load_event("token_client_secret_basic.json"),
        form(grant_type="client_credentials", scope="crm.contacts.read", resource="https://crm.example.com"),
        Authorization=basic("support-bot", deployment.secrets["support-bot"]),
    )
    status, headers, body = call(event)
    # Then it gets a no-store Bearer token that an independent library verifies
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    assert (
        body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["scope"] == "crm.contacts.read"
    )
    claims = verify(deployment, body["access_token"])
    assert claims["iss"] == ISSUER and claims["sub"] == "support-bot" and claims["client_id"] == "support-bot"
    assert claims["aud"] == "https://crm.example.com" and claims["scope"] == "crm.contacts.read"
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    # And one audit record names the decision without the token or the secret
    record = deployment.audit_records()[0]
    assert record["decision"] == "allow" and record["token_id"] == claims["jti"]
    dumped = json.dumps(deployment.audit_records(), default=str)
    assert body["access_token"] not in dumped and deployment.secrets["support-bot"] not in dumped


def test_client_secret_post_defaults_to_standing_scopes_of_the_named_resource(deployment: Deployment) -> None:
    secret = deployment.secrets["billing-agent"]
    status, _, body = call(
        post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=secret,
                resource="https://billing.example.com",
            )
        )
    )
    assert status == 200, body
    assert body["scope"] == "billing.invoices.read"
    assert verify(deployment, body["access_token"])["aud"] == "https://billing.example.com"


def test_base64_encoded_body_is_decoded(deployment: Deployment) -> None:
    event = with_body(
        load_event("token_base64_body.json"),
        b"grant_type=client_credentials",
        Authorization=basic("support-bot", deployment.secrets["support-bot"]),
    )
    status, _, body = call(event)
    assert status == 200, body


def test_assertion_audience_may_be_the_issuer_and_unknown_parameters_are_ignored(
    deployment: Deployment,
) -> None:
    assertion = _assertion(deployment, aud=ISSUER)  # RFC 7523 §3: the issuer identifies us too
    status, _, body = call(post(_jwt_form(assertion, scope="crm.contacts.read", unknown_param="ignored")))
    assert status == 200, body


@pytest.mark.parametrize("key_name", ["rsa", "ec", "ed"])
def test_private_key_jwt_with_each_key_type(deployment: Deployment, key_name: str) -> None:
    key = deployment.keys[key_name]
    assertion = key.assertion("signing-agent", TOKEN_URL)
    event = with_body(
        load_event("token_private_key_jwt.json"),
        form(
            grant_type="client_credentials",
            client_assertion_type=JWT_BEARER,
            client_assertion=assertion,
            scope="crm.contacts.write",
        ),
    )
    status, _, body = call(event)
    assert status == 200, body
    assert verify(deployment, body["access_token"])["scope"] == "crm.contacts.write"


def test_lifetime_is_configurable(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_LIFETIME_SECONDS", "120")
    token.function.container.reset()
    status, _, body = call(
        post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=deployment.secrets["billing-agent"],
                scope="billing.invoices.read",
            )
        )
    )
    assert status == 200 and body["expires_in"] == 120
    claims = verify(deployment, body["access_token"])
    assert claims["exp"] - claims["iat"] == 120


# --- refusals: status, code, fixed description, no state change, one audit record ------------------


def _assertion(deployment: Deployment, **overrides: Any) -> str:
    return deployment.keys["rsa"].assertion("signing-agent", TOKEN_URL, **overrides)


def _jwt_form(assertion: str, **extra: str) -> str:
    return form(
        grant_type="client_credentials", client_assertion_type=JWT_BEARER, client_assertion=assertion, **extra
    )


def _alg_none(deployment: Deployment) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"rsa-1"}').rstrip(b"=").decode()
    good = _assertion(deployment)
    return f"{header}.{good.split('.')[1]}."


def _hmac_with_public_key(deployment: Deployment) -> str:
    import hashlib
    import hmac

    key = deployment.keys["rsa"]
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"rsa-1"}').rstrip(b"=").decode()
    payload = _assertion(deployment).split(".")[1]
    secret = json.dumps(key.jwk).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _forged(deployment: Deployment) -> str:
    from tests.support import rsa_key

    return rsa_key(kid="rsa-1").assertion("signing-agent", TOKEN_URL)


def _pinned_mismatch(deployment: Deployment) -> str:
    """Signed by the registered RSA key, but with PS256 while the key is pinned to RS256."""
    import jwt

    key = deployment.keys["rsa"]
    now = int(time.time())
    claims = {"iss": "signing-agent", "sub": "signing-agent", "aud": TOKEN_URL, "exp": now + 60, "jti": "pin"}
    return jwt.encode(claims, key.private, algorithm="PS256", headers={"kid": key.jwk["kid"]})


def _duplicate_claims(deployment: Deployment) -> str:
    good = _assertion(deployment)
    header, payload, _ = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    raw = json.dumps(claims)[:-1] + ', "sub": "other"}'
    forged_payload = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    return f"{header}.{forged_payload}.{good.split('.')[2]}"


BAD = {
    # name: (event builder, status, error, audit reason)
    "no credentials": (
        lambda d: post(form(grant_type="client_credentials")),
        401,
        "invalid_client",
        "no_client_authentication",
    ),
    "unknown client": (
        lambda d: post(form(grant_type="client_credentials", client_id="nobody", client_secret="x" * 43)),
        401,
        "invalid_client",
        "unknown_client",
    ),
    "wrong secret": (
        lambda d: post(
            form(grant_type="client_credentials", client_id="billing-agent", client_secret="wrong")
        ),
        401,
        "invalid_client",
        "wrong_secret",
    ),
    "unregistered method": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="support-bot",
                client_secret=d.secrets["support-bot"],
            )
        ),
        401,
        "invalid_client",
        "method_not_registered",
    ),
    "public client": (
        lambda d: post(form(grant_type="client_credentials", client_id="public-app", client_secret="x")),
        401,
        "invalid_client",
        "method_not_registered",
    ),
    "two methods": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=d.secrets["billing-agent"],
            ),
            Authorization=basic("billing-agent", d.secrets["billing-agent"]),
        ),
        400,
        "invalid_request",
        "several_auth_methods",
    ),
    "repeated parameter": (
        lambda d: post(
            "grant_type=client_credentials&grant_type=client_credentials"
            f"&client_id=billing-agent&client_secret={d.secrets['billing-agent']}"
        ),
        400,
        "invalid_request",
        "repeated_parameter:grant_type",
    ),
    "wrong content type": (
        lambda d: post('{"grant_type":"client_credentials"}', Content_Type="application/json"),
        400,
        "invalid_request",
        "wrong_content_type",
    ),
    "oversized body": (
        lambda d: post("grant_type=client_credentials&pad=" + "a" * 20000),
        400,
        "invalid_request",
        "body_too_large",
    ),
    "non-UTF-8 body": (
        lambda d: post(b"grant_type=client_credentials&scope=%ff%fe"),
        400,
        "invalid_request",
        "invalid_utf8",
    ),
    "NUL byte": (
        lambda d: post("grant_type=client_credentials&scope=a%00b"),
        400,
        "invalid_request",
        "nul_byte",
    ),
    "too many fields": (
        lambda d: post("&".join(f"f{i}=1" for i in range(40))),
        400,
        "invalid_request",
        "too_many_fields",
    ),
    "missing grant_type": (
        lambda d: post(form(client_id="billing-agent", client_secret="x")),
        400,
        "invalid_request",
        "missing_grant_type",
    ),
    "unknown grant_type": (
        lambda d: post(form(grant_type="password", client_id="billing-agent", client_secret="x")),
        400,
        "unsupported_grant_type",
        "unsupported_grant_type",
    ),
    "scope not allowed": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=d.secrets["billing-agent"],
                scope="crm.contacts.write",
            )
        ),
        400,
        "invalid_scope",
        "scope_not_allowed",
    ),
    "never scope": (
        lambda d: with_body(
            load_event("token_client_secret_basic.json"),
            form(grant_type="client_credentials", scope="billing.invoices.read"),
            Authorization=basic("support-bot", d.secrets["support-bot"]),
        ),
        400,
        "invalid_scope",
        "scope_not_allowed",
    ),
    "unknown scope": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=d.secrets["billing-agent"],
                scope="admin",
            )
        ),
        400,
        "invalid_scope",
        "scope_not_allowed",
    ),
    "audience not allowed": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=d.secrets["billing-agent"],
                resource="https://evil.example.com",
            )
        ),
        400,
        "invalid_target",
        "resource_not_allowed",
    ),
    "resource required": (
        lambda d: post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=d.secrets["billing-agent"],
            )
        ),
        400,
        "invalid_target",
        "resource_required",
    ),
    "alg none": (lambda d: post(_jwt_form(_alg_none(d))), 401, "invalid_client", "assertion_alg_refused"),
    "HMAC keyed with the public key": (
        lambda d: post(_jwt_form(_hmac_with_public_key(d))),
        401,
        "invalid_client",
        "assertion_alg_refused",
    ),
    "forged signature": (
        lambda d: post(_jwt_form(_forged(d))),
        401,
        "invalid_client",
        "assertion_bad_signature",
    ),
    "jku header": (
        lambda d: post(_jwt_form(_assertion(d, headers={"jku": "https://evil.example.com/jwks"}))),
        401,
        "invalid_client",
        "assertion_header_refused",
    ),
    "x5u header": (
        lambda d: post(_jwt_form(_assertion(d, headers={"x5u": "https://evil.example.com/cert.pem"}))),
        401,
        "invalid_client",
        "assertion_header_refused",
    ),
    "algorithm other than the key's pin": (
        lambda d: post(_jwt_form(_pinned_mismatch(d))),
        401,
        "invalid_client",
        "assertion_alg_not_pinned",
    ),
    "unknown kid": (
        lambda d: post(_jwt_form(_assertion(d, headers={"kid": "nobody"}))),
        401,
        "invalid_client",
        "assertion_unknown_kid",
    ),
    "embedded jwk header": (
        lambda d: post(_jwt_form(_assertion(d, headers={"jwk": d.keys["rsa"].jwk}))),
        401,
        "invalid_client",
        "assertion_header_refused",
    ),
    "unknown crit": (
        lambda d: post(_jwt_form(_assertion(d, headers={"crit": ["exp"]}))),
        401,
        "invalid_client",
        "assertion_header_refused",
    ),
    "wrong audience": (
        lambda d: post(_jwt_form(_assertion(d, aud="https://other.example.com/token"))),
        401,
        "invalid_client",
        "assertion_audience",
    ),
    "missing exp": (
        lambda d: post(_jwt_form(_assertion(d, exp=None))),
        401,
        "invalid_client",
        "assertion_exp_missing",
    ),
    "expired": (
        lambda d: post(_jwt_form(_assertion(d, exp=1000))),
        401,
        "invalid_client",
        "assertion_expired",
    ),
    "exp too far": (
        lambda d: post(_jwt_form(_assertion(d, exp=4102444800))),
        401,
        "invalid_client",
        "assertion_exp_too_far",
    ),
    "missing jti": (
        lambda d: post(_jwt_form(_assertion(d, jti=None))),
        401,
        "invalid_client",
        "assertion_jti",
    ),
    "iss is not sub": (
        lambda d: post(_jwt_form(_assertion(d, sub="support-bot"))),
        401,
        "invalid_client",
        "assertion_iss_sub",
    ),
    "duplicate claim names": (
        lambda d: post(_jwt_form(_duplicate_claims(d))),
        401,
        "invalid_client",
        "assertion_malformed",
    ),
    "client_id differs from assertion": (
        lambda d: post(_jwt_form(_assertion(d), client_id="support-bot")),
        400,
        "invalid_request",
        "client_id_mismatch",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_refused_once_and_audited(deployment: Deployment, case: str) -> None:
    build, status, error, reason = BAD[case]
    event = build(deployment)
    before = Snapshot(deployment)
    got_status, headers, body = call(event)
    assert (got_status, body["error"]) == (status, error), body
    assert set(body) <= {"error", "error_description"}
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in body.get("error_description", ""))
    assert headers["Cache-Control"] == "no-store" and headers["Pragma"] == "no-cache"
    record = before.assert_refused_once()
    assert record["reason"] == reason


def test_basic_auth_failure_carries_www_authenticate(deployment: Deployment) -> None:
    event = with_body(
        load_event("token_client_secret_basic.json"),
        form(grant_type="client_credentials"),
        Authorization=basic("support-bot", "wrong"),
    )
    status, headers, body = call(event)
    assert status == 401 and body["error"] == "invalid_client"
    assert headers["WWW-Authenticate"].startswith("Basic ")


def test_unknown_client_and_wrong_secret_look_the_same(deployment: Deployment) -> None:
    unknown = call(post(form(grant_type="client_credentials", client_id="nobody", client_secret="s")))
    wrong = call(post(form(grant_type="client_credentials", client_id="billing-agent", client_secret="s")))
    assert unknown == wrong


def test_get_is_405_and_the_query_is_never_recorded(deployment: Deployment) -> None:
    before = Snapshot(deployment)
    status, headers, body = call(load_event("token_get.json"))
    assert status == 405 and headers["Allow"] == "POST" and body["error"] == "invalid_request"
    before.assert_refused_once()
    assert "must-never-be-logged" not in json.dumps(deployment.audit_records(), default=str)


def test_replayed_assertion_is_refused(deployment: Deployment) -> None:
    assertion = _assertion(deployment)
    first = call(post(_jwt_form(assertion)))
    assert first[0] == 200
    before = Snapshot(deployment)
    status, _, body = call(post(_jwt_form(assertion)))
    assert (status, body["error"]) == (401, "invalid_client")
    assert before.assert_refused_once()["reason"] == "assertion_replayed"


def test_concurrent_replay_gets_exactly_one_token(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import serialize_aws_calls

    serialize_aws_calls(monkeypatch)
    assertion = _assertion(deployment)
    token.endpoint()  # build once, outside the race
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(lambda: call(post(_jwt_form(assertion)))[0]) for _ in range(8)]
        statuses = [f.result(timeout=60) for f in futures]
    assert sorted(statuses) == [200] + [401] * 7


def test_forged_assertion_does_not_burn_the_jti(deployment: Deployment) -> None:
    from tests.support import rsa_key

    forged = rsa_key(kid="rsa-1").assertion("signing-agent", TOKEN_URL, jti="shared-jti")
    assert call(post(_jwt_form(forged)))[0] == 401
    genuine = _assertion(deployment, jti="shared-jti")
    assert call(post(_jwt_form(genuine)))[0] == 200


def test_removed_agent_is_refused_at_once(deployment: Deployment) -> None:
    from agent_auth.operations import apply_policy
    from agent_auth.policy.compiler import load_policy
    from tests.support import policy_document, write_policy

    document = policy_document(deployment.keys)
    del document["agents"]["billing-agent"]
    apply_policy(deployment.target, load_policy(str(write_policy(deployment.policy_file, document))))
    status, _, body = call(
        post(
            form(
                grant_type="client_credentials",
                client_id="billing-agent",
                client_secret=deployment.secrets["billing-agent"],
                scope="billing.invoices.read",
            )
        )
    )
    assert (status, body["error"]) == (401, "invalid_client")
