"""One asymmetric KMS key signs tokens, with the key spec that matches the configured JWS algorithm."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_auth import routes, schema
from agent_auth.config import KEY_SPEC
from agent_auth_infra.application import build_app
from agent_auth_infra.settings import ContextError

from .synthesis import Synthesized, synthesize


@pytest.fixture(scope="module")
def es256(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app synthesized with context signingAlg=ES256
    return synthesize(tmp_path_factory.mktemp("es256"), {"signingAlg": "ES256"})


def test_default_key_is_rsa_2048_for_signing(synth: Synthesized) -> None:
    # Given the default app / Then there is exactly one key: RSA_2048, sign and verify only
    assert synth.props(synth.key_id())["KeySpec"] == "RSA_2048"
    # And the only other key that signs is the HMAC key of approval links (the audit export's key only
    # encrypts: test_audit_export.py)
    assert synth.props(synth.key_id("GENERATE_VERIFY_MAC"))["KeySpec"] == "HMAC_256"
    signing = [
        k for k in synth.of_type("AWS::KMS::Key").values() if k["Properties"]["KeyUsage"] != "ENCRYPT_DECRYPT"
    ]
    assert len(signing) == 2
    assert KEY_SPEC["RS256"] == "RSA_2048"
    assert synth.template["Outputs"][schema.SIGNING_ALG_OUTPUT]["Value"] == "RS256"


def test_signing_key_is_retained(synth: Synthesized) -> None:
    # Given the signing key / Then deleting the stack keeps it: tokens it signed stay verifiable
    assert synth.resources[synth.key_id()]["DeletionPolicy"] == "Retain"


def test_es256_context_makes_an_ec_p256_key(es256: Synthesized) -> None:
    # Then the key is ECC_NIST_P256, and the functions and the output say ES256
    assert es256.props(es256.key_id())["KeySpec"] == KEY_SPEC["ES256"]
    assert KEY_SPEC["ES256"] == "ECC_NIST_P256"
    assert es256.template["Outputs"][schema.SIGNING_ALG_OUTPUT]["Value"] == "ES256"
    for spec in routes.ALL_FUNCTIONS:
        assert es256.environment(es256.function_id(spec))["SIGNING_ALG"] == "ES256"
    assert es256.error is None


def test_unknown_signing_alg_is_refused(tmp_path: Path) -> None:
    # When the context names an algorithm we cannot sign with / Then the app refuses to build
    with pytest.raises(ContextError, match="signingAlg"):
        build_app({"signingAlg": "HS256"}, str(tmp_path))
