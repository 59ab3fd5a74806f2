"""On-behalf-of token exchange (RFC 8693) through the token endpoint's shell, on fakes.

Every bad input of issue 9 gets the RFC's error code, no token and exactly one audit record; the four
advisories named there are regression tests below (search for their ids).
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from agent_auth.oauth.grant_types.token_exchange import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TYPE
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from tests.unit.exchange_support import (
    ALICE,
    CRM,
    FILES,
    IDP,
    ISSUER,
    MAIL,
    NOW,
    Harness,
    claims_of,
)
from tests.unit.fakes import LocalSigner

REFRESH_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


@pytest.fixture
def h() -> Harness:
    return Harness()


def subject(token: str, token_type: str = ACCESS_TOKEN_TYPE, **more: Any) -> dict[str, Any]:
    return {"subject_token": token, "subject_token_type": token_type, **more}


# --- what an exchange issues -------------------------------------------------------------------------------


def test_a_users_token_is_exchanged_for_a_narrower_one_that_names_the_agent(h: Harness) -> None:
    # Given alice's token for crm, issued to front
    token = h.user_token()
    # When front exchanges it for crm.read only
    outcome = h.exchange("front", token, resource=CRM, scope="crm.read")
    # Then the response is RFC 8693 §2.2.1's, without a refresh token
    response = outcome.response
    assert response["issued_token_type"] == ACCESS_TOKEN_TYPE and response["token_type"] == "Bearer"
    assert response["scope"] == "crm.read" and "refresh_token" not in response
    # And the token keeps the user, names the agent as client and actor, and ends with its subject
    claims = claims_of(str(response["access_token"]))
    assert claims["sub"] == ALICE and claims["client_id"] == "front" and claims["aud"] == CRM
    assert claims["act"] == {"sub": "front"}
    assert claims["exp"] <= claims_of(token)["exp"]
    assert claims["origin"] == {"iss": ISSUER, "client_id": "front"}
    # And one audit record tells who acted for whom
    [record] = h.audit.records
    assert record.decision == "allow" and record.user == ALICE and record.actor_chain == ("front",)
    assert record.details["exchange"]["subject_token_id"] == claims_of(token)["jti"]


def test_a_chain_of_two_agents_reads_newest_first_and_narrows_at_each_step(h: Harness) -> None:
    first = h.exchange("front", h.user_token(), resource=MAIL, scope="mail.read")
    first_token = str(first.response["access_token"])
    second = h.exchange("mailer", first_token, resource=FILES)
    claims = claims_of(str(second.response["access_token"]))
    assert claims["act"] == {"sub": "mailer", "act": {"sub": "front"}}
    # files.read: within alice's roles and front's delegation (the chain's origin); files.write is neither
    assert claims["scope"] == "files.read"
    assert claims["exp"] <= claims_of(first_token)["exp"]
    assert h.audit.records[-1].actor_chain == ("mailer", "front")


def test_the_audience_may_be_named_by_its_policy_name(h: Harness) -> None:
    outcome = h.exchange("front", h.user_token(), audience="crm")
    assert claims_of(str(outcome.response["access_token"]))["aud"] == CRM


def test_the_same_target_twice_on_the_wire_is_one_target(h: Harness) -> None:
    outcome = h.exchange("front", h.user_token(), resource=[CRM, CRM], audience=CRM)
    assert outcome.audience == CRM


def test_an_actor_token_may_prove_the_requesting_agent_itself(h: Harness) -> None:
    own = h.user_token("front", subject="front", scopes=())
    outcome = h.exchange(
        "front", h.user_token(), resource=CRM, actor_token=own, actor_token_type=ACCESS_TOKEN_TYPE
    )
    assert claims_of(str(outcome.response["access_token"]))["act"] == {"sub": "front"}


def test_a_trusted_issuers_token_is_exchanged_with_the_agents_delegation_standing_in(h: Harness) -> None:
    outcome = h.exchange("front", h.idp.token(), subject_token_type=JWT_TYPE, resource=CRM)
    claims = claims_of(str(outcome.response["access_token"]))
    assert claims["sub"] == ALICE and claims["act"] == {"sub": "front"}
    assert claims["scope"] == "crm.read crm.write"  # front's delegation ∩ alice's roles ∩ crm
    assert claims["exp"] <= NOW + 600 and claims["origin"] == {"iss": IDP, "client_id": "front"}


def test_an_rs256_token_of_the_trusted_issuer_is_accepted_too(h: Harness) -> None:
    token = h.idp.token(alg="RS256", kid="rsa-1")
    outcome = h.exchange("front", token, subject_token_type=ID_TOKEN_TYPE, resource=CRM, scope="crm.read")
    assert outcome.scope == "crm.read"


# --- bad input: each is the RFC's error, no token, one audit record --------------------------------------


def other_issuers_token(h: Harness) -> str:
    claims = {"iss": "https://evil.example.com", "sub": ALICE, "aud": CRM, "exp": NOW + 60, "iat": NOW}
    return jwt.encode(claims, LocalSigner().key, algorithm="RS256", headers={"kid": "local", "typ": "at+jwt"})


def forged(h: Harness) -> str:
    # Our issuer and kid, another key.
    issuer = TokenIssuer(issuer=ISSUER, signer=LocalSigner(), lifetime=300)
    return issuer.issue(Issuance(ALICE, "front", CRM, ("crm.read",)), NOW).token


def id_token(h: Harness) -> str:
    return h.issuer.id_token(user=ALICE, client_id="front", nonce=None, now=NOW)


BAD_SUBJECTS = {
    "another issuer": (other_issuers_token, ACCESS_TOKEN_TYPE, "subject_issuer_not_trusted"),
    "forged": (forged, ACCESS_TOKEN_TYPE, "subject_token_bad_signature"),
    "expired within the skew": (
        lambda h: h.user_token(lifetime=-10),
        ACCESS_TOKEN_TYPE,
        "subject_token_expired",
    ),
    "expired long ago": (lambda h: h.user_token(lifetime=-3600), ACCESS_TOKEN_TYPE, "subject_token_expired"),
    "a refresh token": (
        lambda h: opaque.new_refresh_token("fam"),
        REFRESH_TYPE,
        "unsupported_subject_token_type",
    ),
    "a refresh token said to be an access token": (
        lambda h: opaque.new_refresh_token("fam"),
        ACCESS_TOKEN_TYPE,
        "subject_token_malformed",
    ),
    "our ID token as an access token": (id_token, ACCESS_TOKEN_TYPE, "subject_token_wrong_typ"),
    "our ID token as an ID token": (id_token, ID_TOKEN_TYPE, "subject_token_type_mismatch"),
    "our access token said to be a JWT": (lambda h: h.user_token(), JWT_TYPE, "subject_token_type_mismatch"),
    "the trusted issuer's token said to be ours": (
        lambda h: h.idp.token(),
        ACCESS_TOKEN_TYPE,
        "subject_token_type_mismatch",
    ),
    "an approval link": (
        lambda h: f"{ISSUER}/approvals/req-1?approver=a%40example.com&exp={NOW + 60}&sig=abc",
        ACCESS_TOKEN_TYPE,
        "subject_token_malformed",
    ),
    "an agent's own client-credentials token": (
        lambda h: h.user_token("front", subject="front", scopes=()),
        ACCESS_TOKEN_TYPE,
        "subject_token_not_a_users",
    ),
    "oversized": (
        lambda h: h.user_token(extra={"pad": "x" * 9000}),
        ACCESS_TOKEN_TYPE,
        "subject_token_too_large",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SUBJECTS))
def test_a_bad_subject_token_is_refused(h: Harness, case: str) -> None:
    make, token_type, reason = BAD_SUBJECTS[case]
    error, record = h.refused("front", subject(make(h), token_type, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", reason)


def test_a_revoked_subject_token_is_refused(h: Harness) -> None:
    token = h.user_token()
    h.revocations.revoked.add(claims_of(token)["jti"])
    error, record = h.refused("front", subject(token, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "subject_token_revoked")


def test_a_subject_token_of_an_agent_that_no_longer_exists_is_refused(h: Harness) -> None:
    token = h.exchange("front", h.user_token(), resource=MAIL).response["access_token"]
    del h.agents.items["front"]
    error, record = h.refused("mailer", subject(str(token), resource=MAIL))
    assert (error.error, record.reason) == ("invalid_request", "subject_client_removed")


def test_a_subject_token_whose_consent_was_withdrawn_is_refused(h: Harness) -> None:
    del h.consents.items[(ALICE, "front")]
    error, record = h.refused("front", subject(h.user_token(), resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "consent_withdrawn")


def test_an_agent_without_exchange_rules_is_unauthorized(h: Harness) -> None:
    error, record = h.refused("plain", subject(h.user_token("plain", scopes=("crm.read",)), resource=CRM))
    assert (error.error, record.reason) == ("unauthorized_client", "exchange_not_allowed")


def test_a_chain_deeper_than_max_chain_is_refused(h: Harness) -> None:
    one = h.exchange("front", h.user_token(), resource=MAIL).response["access_token"]
    two = h.exchange("mailer", str(one), resource=FILES).response["access_token"]
    # filer's max_chain is 2: filer, mailer, front would be 3
    error, record = h.refused("filer", subject(str(two), resource=FILES))
    assert (error.error, record.reason) == ("invalid_request", "chain_too_deep")


def test_a_refused_exchange_of_a_verified_subject_names_the_user_and_the_chain_it_would_have_made(
    h: Harness,
) -> None:
    # Given a subject token that verified (ours, signed): who it acts for is known, not input
    one = h.exchange("front", h.user_token(), resource=MAIL).response["access_token"]
    two = h.exchange("mailer", str(one), resource=FILES).response["access_token"]
    # When filer's exchange is refused for the chain's depth
    _, record = h.refused("filer", subject(str(two), resource=FILES))
    # Then its audit record says for whom, and which agents would have stood between
    assert record.user == "alice@example.com"
    assert record.actor_chain == ("filer", "mailer", "front")


def test_a_refused_exchange_of_an_unverified_subject_names_no_user(h: Harness) -> None:
    _, record = h.refused("front", subject(forged(h), resource=CRM))
    assert record.user is None and record.actor_chain is None


def test_front_may_not_exchange_an_exchanged_token_beyond_its_one_hop(h: Harness) -> None:
    one = h.exchange("front", h.user_token(), resource=MAIL).response["access_token"]
    error, record = h.refused("front", subject(str(one), resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "chain_too_deep")


def test_a_scope_wider_than_the_subjects_within_one_audience_is_refused(h: Harness) -> None:
    narrow = h.user_token(scopes=("crm.read",))
    error, record = h.refused("front", subject(narrow, resource=CRM, scope="crm.read crm.write"))
    assert (error.error, record.reason) == ("invalid_scope", "exchange_wider_scope")


def test_a_scope_beyond_the_users_consent_is_refused(h: Harness) -> None:
    h.consents.give("front", CRM, "crm.read")
    error, _ = h.refused("front", subject(h.user_token(), resource=CRM, scope="crm.write"))
    assert error.error == "invalid_scope"


def test_a_scope_beyond_the_users_roles_is_refused_in_another_audience(h: Harness) -> None:
    # files.write: an audience scope mailer may target, but alice's roles do not give it
    one = h.exchange("front", h.user_token(), resource=MAIL).response["access_token"]
    error, _ = h.refused("mailer", subject(str(one), resource=FILES, scope="files.write"))
    assert error.error == "invalid_scope"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ({"resource": "https://unknown.example.com"}, "exchange_target_not_allowed"),
        ({"resource": FILES}, "exchange_target_not_allowed"),  # an audience, but not one of front's
        ({"audience": "nowhere"}, "malformed_resource"),
        ({"resource": [CRM, MAIL]}, "several_targets"),
        ({"resource": CRM, "audience": MAIL}, "several_targets"),
        ({}, "missing_target"),
    ],
)
def test_a_target_outside_the_agents_exchange_audiences_is_invalid_target(
    h: Harness, target: dict[str, Any], reason: str
) -> None:
    error, record = h.refused("front", subject(h.user_token(), **target))
    assert (error.error, record.reason) == ("invalid_target", reason)


def test_an_actor_token_without_its_type_is_refused(h: Harness) -> None:
    own = h.user_token("front", subject="front", scopes=())
    error, record = h.refused("front", subject(h.user_token(), resource=CRM, actor_token=own))
    assert (error.error, record.reason) == ("invalid_request", "actor_token_without_type")


def test_an_actor_token_type_without_the_token_is_refused(h: Harness) -> None:
    error, record = h.refused(
        "front", subject(h.user_token(), resource=CRM, actor_token_type=ACCESS_TOKEN_TYPE)
    )
    assert (error.error, record.reason) == ("invalid_request", "actor_token_without_type")


def test_an_actor_token_of_another_party_is_refused(h: Harness) -> None:
    other = h.user_token("mailer", subject="mailer", scopes=())
    params = subject(h.user_token(), resource=CRM, actor_token=other, actor_token_type=ACCESS_TOKEN_TYPE)
    error, record = h.refused("front", params)
    assert (error.error, record.reason) == ("invalid_request", "actor_token_of_another_party")


def test_a_repeated_subject_token_is_refused(h: Harness) -> None:
    token = h.user_token()
    error, record = h.refused("front", {**subject(token, resource=CRM), "subject_token": [token, token]})
    assert (error.error, record.reason) == ("invalid_request", "repeated_parameter:subject_token")


def test_a_missing_subject_token_is_refused(h: Harness) -> None:
    error, record = h.refused("front", {"subject_token_type": ACCESS_TOKEN_TYPE, "resource": CRM})
    assert (error.error, record.reason) == ("invalid_request", "missing_subject_token")


def test_another_requested_token_type_is_refused(h: Harness) -> None:
    params = subject(h.user_token(), resource=CRM, requested_token_type=REFRESH_TYPE)
    error, record = h.refused("front", params)
    assert (error.error, record.reason) == ("invalid_request", "unsupported_requested_token_type")


def test_may_act_naming_another_agent_is_honoured(h: Harness) -> None:
    token = h.user_token(extra={"may_act": {"sub": "mailer"}})
    error, record = h.refused("front", subject(token, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "may_act_names_another_agent")


def test_may_act_naming_the_agent_lets_it_act(h: Harness) -> None:
    token = h.user_token(extra={"may_act": {"sub": "front"}})
    assert h.exchange("front", token, resource=CRM).scope == "crm.read crm.write"


def test_a_malformed_act_chain_is_refused(h: Harness) -> None:
    token = h.user_token(
        "front", act={"sub": "front", "evil": True}, extra={"origin": {"iss": ISSUER, "client_id": "front"}}
    )
    error, record = h.refused("mailer", subject(token, resource=MAIL))
    assert (error.error, record.reason) == ("invalid_request", "malformed_act")


# --- trusted issuers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "subject_token_wrong_audience"),
        ({"aud": ["agent-auth", "someone-else"]}, "subject_token_wrong_audience"),
        ({"exp": NOW - 1}, "subject_token_expired"),
        ({"jti": None}, "subject_token_missing_jti"),
        ({"email": None}, "subject_token_missing_user_claim"),
        ({"email_verified": False}, "subject_token_email_not_verified"),
        # An issuer that does not vouch for the address (nOAuth): a missing or string "false" claim
        ({"email_verified": None}, "subject_token_email_not_verified"),
        ({"email_verified": "false"}, "subject_token_email_not_verified"),
        ({"iat": NOW + 3600}, "subject_token_issued_in_future"),
        ({"act": {"sub": "someone"}}, "subject_token_foreign_act"),
    ],
)
def test_a_trusted_issuers_bad_token_is_refused(h: Harness, claims: dict[str, Any], reason: str) -> None:
    error, record = h.refused("front", subject(h.idp.token(**claims), JWT_TYPE, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", reason)


def test_an_algorithm_outside_the_issuers_allow_list_is_refused() -> None:
    h = Harness(policy=Harness().policy.replace("algorithms: [ES384, RS256]", "algorithms: [ES384]"))
    token = h.idp.token(alg="RS256", kid="rsa-1")
    error, record = h.refused("front", subject(token, JWT_TYPE, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "subject_token_unknown_kid")


def test_a_trusted_issuers_token_is_exchanged_once(h: Harness) -> None:
    token = h.idp.token()
    h.exchange("front", token, subject_token_type=JWT_TYPE, resource=CRM)
    error, record = h.refused("front", subject(token, JWT_TYPE, resource=CRM))
    assert (error.error, record.reason) == ("invalid_request", "subject_token_replayed")


def test_an_unknown_kid_refetches_the_keys_at_most_once_a_minute(h: Harness) -> None:
    h.exchange("front", h.idp.token(), subject_token_type=JWT_TYPE, resource=CRM)
    assert h.idp.fetches == [False]
    for i in range(5):
        h.refused("front", subject(h.idp.token(kid=f"made-up-{i}"), JWT_TYPE, resource=CRM))
    h.clock.advance(30)
    h.refused("front", subject(h.idp.token(kid="made-up-x"), JWT_TYPE, resource=CRM))
    assert h.idp.fetches == [False]  # nothing refetched within the first minute
    h.clock.advance(31)
    h.refused("front", subject(h.idp.token(kid="made-up-y"), JWT_TYPE, resource=CRM))
    h.refused("front", subject(h.idp.token(kid="made-up-z"), JWT_TYPE, resource=CRM))
    assert h.idp.fetches == [False, True]


def test_a_rotated_key_is_found_by_the_refetch(h: Harness) -> None:
    h.exchange("front", h.idp.token(), subject_token_type=JWT_TYPE, resource=CRM)
    h.idp.keys[0] = {**h.idp.keys[0], "kid": "ec-2"}
    h.clock.advance(61)
    outcome = h.exchange("front", h.idp.token(kid="ec-2"), subject_token_type=JWT_TYPE, resource=CRM)
    assert outcome.user == ALICE


# --- the advisories of issue 9, as regression tests ---------------------------------------------------


def test_zitadel_cve_2026_56668_a_subject_token_issued_to_another_client_is_refused(h: Harness) -> None:
    # Given alice's token issued to outsider, which is in nobody's exchange.from
    token = h.user_token("outsider", scopes=("crm.read",))
    # When front or mailer presents it
    for agent, target in (("front", CRM), ("mailer", MAIL)):
        error, record = h.refused(agent, subject(token, resource=target))
        # Then it is refused: a token is only exchanged by the agent it was issued to, or one allowed
        assert (error.error, record.reason) == ("invalid_request", "subject_client_not_in_exchange_from")


def test_keycloak_cve_2026_96460_the_exchanged_token_never_outlives_its_subject(h: Harness) -> None:
    # Given a subject token with 90 seconds left (the issuer's lifetime is an hour)
    token = h.user_token(lifetime=90)
    # When it is exchanged, and the result exchanged again
    one = str(h.exchange("front", token, resource=MAIL).response["access_token"])
    h.clock.advance(30)
    two = h.exchange("mailer", one, resource=FILES)
    # Then neither token ends after the subject's
    assert claims_of(one)["exp"] <= claims_of(token)["exp"]
    assert claims_of(str(two.response["access_token"]))["exp"] <= claims_of(token)["exp"]
    assert two.response["expires_in"] <= 60


def test_keycloak_cve_2026_9704_an_oversized_subject_never_falls_back_to_the_caller(h: Harness) -> None:
    # Given a subject token over 8 KB, sent by an authenticated agent that holds standing access
    token = h.user_token(extra={"pad": "x" * 8200})
    # When it is exchanged
    error, record = h.refused("front", subject(token, resource=CRM))
    # Then the request fails: no token at all, certainly none for the caller itself
    assert (error.error, record.reason) == ("invalid_request", "subject_token_too_large")
    assert record.user is None and record.scope_granted is None


def test_keycloak_52691_act_checks_hold_on_every_path(h: Harness) -> None:
    # Given front with max_chain 1, and a token front already exchanged (act: front)
    chained = str(h.exchange("front", h.user_token(), resource=MAIL).response["access_token"])
    own = h.user_token("front", subject="front", scopes=())
    actor = {"actor_token": own, "actor_token_type": ACCESS_TOKEN_TYPE}
    # Then the chain bound holds with and without an actor token
    assert h.refused("front", subject(chained, resource=CRM))[1].reason == "chain_too_deep"
    assert h.refused("front", subject(chained, resource=CRM, **actor))[1].reason == "chain_too_deep"
    # And may_act holds on our tokens and a trusted issuer's alike, with and without an actor token
    ours = h.user_token(extra={"may_act": {"sub": "mailer"}})
    theirs = h.idp.token(may_act={"sub": "mailer"})
    for params in (
        subject(ours, resource=CRM),
        subject(ours, resource=CRM, **actor),
        subject(theirs, JWT_TYPE, resource=CRM),
        subject(h.idp.token(may_act={"sub": "mailer"}, jti="j2"), JWT_TYPE, resource=CRM, **actor),
    ):
        assert h.refused("front", params)[1].reason == "may_act_names_another_agent"


def test_the_audit_trail_keeps_ids_never_tokens(h: Harness) -> None:
    # Given an exchange of our token and one of a trusted issuer's
    ours, theirs = h.user_token(), h.idp.token(jti="their-jti-1")
    issued = h.exchange("front", ours, resource=CRM).response["access_token"]
    h.exchange("front", theirs, subject_token_type=JWT_TYPE, resource=CRM)
    trail = repr([r.to_dict() for r in h.audit.records])
    # Then no token is in the trail, and a trusted issuer's jti only as a hash
    assert ours not in trail and theirs not in trail and str(issued) not in trail
    assert "their-jti-1" not in trail
    external = h.audit.records[-1].details["exchange"]
    assert external["subject_token_id"].startswith("sha256:") and "subject_client" not in external
    assert external["subject_issuer"] == IDP


def test_a_signing_key_published_since_our_keys_were_read_is_found_within_a_minute(h: Harness) -> None:
    # Given the grant has read our published keys
    h.exchange("front", h.user_token(), resource=CRM)
    assert h.published.reads == 1
    # When a rotated key is published and signs alice's next token
    rotated = LocalSigner()
    rotated.kid = "rotated"
    h.published.publish(rotated)
    token = TokenIssuer(issuer=ISSUER, signer=rotated, lifetime=600).issue(
        Issuance(ALICE, "front", CRM, ("crm.read",)), NOW
    )
    # Then within the first minute the keys are not read again (an unknown kid cannot flood)
    assert h.refused("front", subject(token.token, resource=CRM))[1].reason == "subject_token_unknown_kid"
    assert h.published.reads == 1
    # And after it they are, and the token is accepted
    h.clock.advance(61)
    assert h.exchange("front", token.token, resource=CRM).user == ALICE
    assert h.published.reads == 2


def test_an_exchanged_token_carries_what_revokes_its_subject_family_and_ancestors(h: Harness) -> None:
    # Given a delegated token of a refresh family, exchanged twice
    first = h.user_token(extra={"token_family": "fam-1"})
    one = str(h.exchange("front", first, resource=MAIL).response["access_token"])
    two = str(h.exchange("mailer", one, resource=FILES).response["access_token"])
    # Then each exchanged token names the family and every token of ours before it (oldest first), so
    # revoking any of them, or the family, reaches it (adapters.revocations.RevocationLookup)
    assert claims_of(one)["token_family"] == "fam-1"
    assert claims_of(one)["ancestors"] == [claims_of(first)["jti"]]
    assert claims_of(two)["token_family"] == "fam-1"
    assert claims_of(two)["ancestors"] == [claims_of(first)["jti"], claims_of(one)["jti"]]


def test_a_subject_with_more_ancestors_than_a_token_carries_is_refused_not_truncated(h: Harness) -> None:
    # Dropping one would let its revocation miss the new token: fail closed instead
    crowded = h.user_token(extra={"ancestors": [f"tok-{i}" for i in range(8)]})
    error, record = h.refused("front", subject(crowded, resource=MAIL))
    assert (error.error, record.reason) == ("invalid_request", "chain_too_deep")
