"""Exchanged tokens are signed only where every other token is: by the token function, the one role with
kms:Sign. The exchange grant verifies our own tokens with the published JWKS, so the token role gains no
KMS action for it (no GetPublicKey, no Verify) and no other function learns to sign."""

from __future__ import annotations

from fnmatch import fnmatchcase

from agent_auth import routes
from agent_auth.grant_catalog import GRANT_TYPES, grant_type_names
from agent_auth.oauth.grant_types.token_exchange import TOKEN_EXCHANGE, TokenExchangeGrant

from .synthesis import Synthesized, _as_list


def test_the_token_function_serves_the_exchange_grant() -> None:
    # Given the one list the token function's registry and IAM policy are built from
    # Then the exchange grant type is in it, so it is served (and only served) at /token
    assert TokenExchangeGrant in GRANT_TYPES and TOKEN_EXCHANGE in grant_type_names()
    assert routes.TOKEN.paths == ("/token",)


def test_only_the_token_role_may_sign_and_it_gains_no_other_kms_action(synth: Synthesized) -> None:
    token_role = synth.role_id(synth.function_id(routes.TOKEN))
    signers: set[str] = set()
    token_kms: set[str] = set()
    for roles, document in synth.policy_documents():
        for statement in _as_list(document["Statement"]):
            actions = [a.lower() for a in _as_list(statement.get("Action", []))]
            if statement["Effect"] == "Allow" and any(fnmatchcase("kms:sign", a) for a in actions):
                signers |= roles
            if roles == {token_role}:
                token_kms |= {a for a in actions if a.startswith("kms:")}
    # Then exactly the token function may sign (exchanged tokens included), and with nothing but Sign
    assert signers == {token_role}
    assert token_kms == {"kms:sign"}
