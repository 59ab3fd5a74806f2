"""The policy keys of token exchange: per agent `exchange` and top-level `trusted_issuers`. Shape in the
model, references and bounds in the checks, and what the exchange grant reads in the compiled item."""

from __future__ import annotations

import pytest

from agent_auth.adapters.records_codec import agent_from_item
from agent_auth.policy.compiler import compile_policy, parse_policy
from agent_auth.records import ExchangeAudience, TrustedIssuer
from tests.unit.test_policy_delegation import BASE, line_of, one_problem, problems

EXCHANGE = BASE.replace(
    "    roles: [reader]\n",
    "    roles: [reader]\n"
    "    exchange:\n      audiences: [crm, billing]\n      from: [cli]\n      max_chain: 2\n",
)
ISSUER = (
    "trusted_issuers:\n"
    "  - issuer: https://idp.example.com\n"
    "    jwks_uri: https://idp.example.com/keys\n"
    "    audience: agent-auth\n"
    "    user_claim: email\n"
    "    algorithms: [ES384, RS256]\n"
)


def with_issuer(text: str, issuer: str = ISSUER) -> str:
    return text.replace("agents:\n", issuer + "agents:\n")


def test_exchange_and_trusted_issuers_compile_into_the_exchanging_agents_item() -> None:
    compiled = compile_policy(parse_policy("policy.yaml", with_issuer(EXCHANGE)))
    agent = agent_from_item(compiled.agents["bot"])
    assert agent.exchange is not None
    assert agent.exchange.audiences["crm"] == ExchangeAudience(
        "https://crm.example.com", frozenset({"crm.read", "crm.write"})
    )
    assert agent.exchange.from_agents == frozenset({"cli"}) and agent.exchange.max_chain == 2
    assert agent.exchange.trusted_issuers == (
        TrustedIssuer(
            "https://idp.example.com",
            "https://idp.example.com/keys",
            "agent-auth",
            "email",
            ("ES384", "RS256"),
        ),
    )
    # And an agent without `exchange` has none in its item (apply removes it)
    assert compiled.agents["cli"]["exchange"] is None
    # And the stored document spells `from` as the file does
    assert compiled.document["agents"]["bot"]["exchange"]["from"] == ["cli"]


def test_trusted_issuer_defaults_are_email_and_rs256() -> None:
    text = with_issuer(
        EXCHANGE,
        "trusted_issuers:\n"
        "  - {issuer: https://idp.example.com, jwks_uri: https://idp.example.com/k, audience: a}\n",
    )
    [issuer] = parse_policy("policy.yaml", text).trusted_issuers
    assert issuer.user_claim == "email" and issuer.algorithms == ["RS256"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("audiences: [crm, billing]", "audiences: [crm, nowhere]", "unknown audience 'nowhere'"),
        ("audiences: [crm, billing]", "audiences: [crm, crm]", "'crm' is listed twice"),
        ("from: [cli]", "from: [ghost]", "unknown agent 'ghost'"),
        ("from: [cli]", "from: [cli, cli]", "'cli' is listed twice"),
        ("max_chain: 2", "max_chain: 0", "greater than or equal to 1"),
        ("max_chain: 2", "max_chain: 6", "less than or equal to 5"),
        ("max_chain: 2", "max_length: 2", "unknown key 'max_length'"),
    ],
)
def test_exchange_problems_name_the_line_and_the_fix(old: str, new: str, expected: str) -> None:
    text = EXCHANGE.replace(old, new)
    message = one_problem(text)
    assert expected in message, message
    assert message.startswith(
        f"policy.yaml:{line_of(text, new.split(':', maxsplit=1)[0] + ':', after='exchange:')}:"
    )


def test_an_unknown_exchange_key_lists_the_allowed_ones() -> None:
    message = one_problem(EXCHANGE.replace("max_chain: 2", "chain: 2"))
    assert "allowed here: audiences, from, max_chain" in message


def test_a_public_agent_cannot_exchange() -> None:
    text = BASE.replace(
        "      consent: every_time\n", "      consent: every_time\n    exchange: {audiences: [crm]}\n"
    )
    assert "cannot exchange tokens" in one_problem(text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "jwks_uri: https://idp.example.com/keys",
            "jwks_uri: http://idp.example.com/keys",
            "https, or http only",
        ),
        ("issuer: https://idp.example.com", "issuer: http://idp.example.com", "https, or http only"),
        ("algorithms: [ES384, RS256]", "algorithms: [HS256]", "Input should be"),
        ("algorithms: [ES384, RS256]", "algorithms: [none]", "Input should be"),
        ("algorithms: [ES384, RS256]", "algorithms: []", "at least 1 item"),
        ("algorithms: [ES384, RS256]", "algorithms: [RS256, RS256]", "an algorithm is listed twice"),
        ("    audience: agent-auth\n", "", "required key 'audience' is missing"),
        ("user_claim: email", "user_claim: 'a b'", "not a valid"),
    ],
)
def test_trusted_issuer_problems(old: str, new: str, expected: str) -> None:
    text = with_issuer(EXCHANGE, ISSUER.replace(old, new))
    message = one_problem(text)
    assert expected in message, message


def test_a_loopback_issuer_may_use_http() -> None:
    local = ISSUER.replace("https://idp.example.com", "http://127.0.0.1:8000/_dev/oidc")
    [issuer] = parse_policy("policy.yaml", with_issuer(EXCHANGE, local)).trusted_issuers
    assert issuer.jwks_uri == "http://127.0.0.1:8000/_dev/oidc/keys"


def test_an_issuer_listed_twice_is_a_problem() -> None:
    twice = ISSUER + ISSUER.replace("trusted_issuers:\n", "")
    found = problems(with_issuer(EXCHANGE, twice))
    assert len(found) == 1 and "is also trusted_issuers[0]" in found[0]
