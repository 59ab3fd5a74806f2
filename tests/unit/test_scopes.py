"""Scope and audience decisions (RFC 6749 §3.3, RFC 8707)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent_auth.errors import InvalidScope, InvalidTarget
from agent_auth.oauth.scopes import decide, parse_scope
from agent_auth.records import Agent

AGENT = Agent(
    client_id="bot",
    owner="owner@example.com",
    auth_method="client_secret_basic",
    scopes={"crm.read": "crm", "crm.write": "crm", "bill.read": "billing"},
    audiences={"crm": "https://crm.example.com", "billing": "https://billing.example.com"},
)


def test_requested_scopes_within_one_audience() -> None:
    decision = decide(AGENT, ["crm.read", "crm.write"], [])
    assert decision.audience == "https://crm.example.com" and decision.scope == "crm.read crm.write"


def test_default_is_the_standing_scopes_of_the_named_resource() -> None:
    assert decide(AGENT, None, ["https://billing.example.com"]).scopes == ("bill.read",)


def test_default_across_audiences_needs_a_resource() -> None:
    with pytest.raises(InvalidTarget):
        decide(AGENT, None, [])


@pytest.mark.parametrize(
    ("scopes", "resources", "error"),
    [
        (["crm.delete"], [], InvalidScope),
        (["crm.read", "bill.read"], [], InvalidScope),
        (["crm.read"], ["https://billing.example.com"], InvalidScope),
        (["crm.read"], ["https://evil.example.com"], InvalidTarget),
        (["crm.read"], ["https://crm.example.com", "https://billing.example.com"], InvalidTarget),
        (["crm.read"], ["not-a-uri"], InvalidTarget),
        (["crm.read"], ["https://crm.example.com#frag"], InvalidTarget),
    ],
)
def test_nothing_is_silently_widened(scopes: list[str], resources: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        decide(AGENT, scopes, resources)


def test_never_wins_over_standing_access() -> None:
    agent = replace(AGENT, never=frozenset({"crm.write"}))
    with pytest.raises(InvalidScope):
        decide(agent, ["crm.write"], [])
    assert decide(agent, None, ["https://crm.example.com"]).scopes == ("crm.read",)


@pytest.mark.parametrize("raw", ['a"b', "a\\b", "a  b", " a", "é"])
def test_malformed_scope_strings(raw: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(raw)


def test_duplicate_scopes_collapse() -> None:
    assert parse_scope("a b a") == ["a", "b"]
