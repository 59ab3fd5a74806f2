"""Approver groups in both forms: `GROUP: [emails]` and `GROUP: {members: [...], sign_in: true}`.

The compiled group item carries `sign_in`; mistakes in the mapping form name the file, the line and
the fix like every other policy problem (product.md, "The policy file")."""

from __future__ import annotations

import textwrap

import pytest

from agent_auth.policy.compiler import compile_policy, parse_policy
from agent_auth.policy.source import PolicyInvalid

HEAD = """\
version: 1
audiences:
  crm:
    uri: https://crm.example.com
    scopes: {crm.write: Write}
roles:
  editor: [crm.write]
approvers:
"""
AGENT = """\
agents:
  bot:
    owner: owner@example.com
    auth: client_secret_basic
    jit:
      - role: editor
        approvers: leads
"""


def policy(groups: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(groups), "  ") + AGENT


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy("policy.yaml", text)
    return [str(p) for p in caught.value.problems]


def test_the_list_form_compiles_as_before_and_does_not_require_sign_in() -> None:
    compiled = compile_policy(parse_policy("p.yaml", policy("leads: [b@example.com, a@example.com]\n")))
    assert compiled.groups == {"leads": {"members": ["a@example.com", "b@example.com"], "sign_in": False}}
    # The stored document keeps the list as written: an applied policy in this form is unchanged.
    assert compiled.document["approvers"] == {"leads": ["b@example.com", "a@example.com"]}


def test_the_mapping_form_carries_sign_in_into_the_group_item() -> None:
    text = policy("leads:\n  members: [lead@example.com]\n  sign_in: true\nothers: [x@example.com]\n")
    compiled = compile_policy(parse_policy("p.yaml", text))
    assert compiled.groups["leads"] == {"members": ["lead@example.com"], "sign_in": True}
    assert compiled.groups["others"] == {"members": ["x@example.com"], "sign_in": False}


def test_the_mapping_form_without_sign_in_does_not_require_it() -> None:
    compiled = compile_policy(parse_policy("p.yaml", policy("leads:\n  members: [lead@example.com]\n")))
    assert compiled.groups["leads"] == {"members": ["lead@example.com"], "sign_in": False}


def test_an_unknown_key_in_the_mapping_form_names_the_line_and_the_allowed_keys() -> None:
    [message] = problems(policy("leads:\n  members: [lead@example.com]\n  sing_in: true\n"))
    assert message.startswith("policy.yaml:11: approvers.leads.sing_in: unknown key 'sing_in'")
    assert "allowed here: members, sign_in" in message


def test_the_mapping_form_needs_members() -> None:
    [message] = problems(policy("leads:\n  sign_in: true\n"))
    assert message.startswith("policy.yaml:9: approvers.leads.members: required key 'members' is missing")


def test_an_empty_members_list_is_refused_at_its_line() -> None:
    [message] = problems(policy("leads:\n  members: []\n  sign_in: true\n"))
    assert message.startswith("policy.yaml:10: approvers.leads.members: an approver group needs at least")


def test_a_bad_address_in_the_mapping_form_names_its_line() -> None:
    [message] = problems(policy("leads:\n  members: [lead@example.com, not-an-address]\n"))
    assert message.startswith("policy.yaml:10: approvers.leads.members[1]: 'not-an-address' is not a valid")
    assert "email address" in message


def test_sign_in_must_be_a_boolean() -> None:
    [message] = problems(policy("leads:\n  members: [lead@example.com]\n  sign_in: 'yes'\n"))
    assert message.startswith("policy.yaml:11: approvers.leads.sign_in:")


def test_a_group_that_is_neither_a_list_nor_a_mapping_says_which_forms_exist() -> None:
    [message] = problems(policy("leads: lead@example.com\n"))
    assert message.startswith("policy.yaml:9: approvers.leads: an approver group is a list of email")
    assert "sign_in: true" in message


def test_the_list_form_still_reports_bad_addresses_without_a_form_tag() -> None:
    [message] = problems(policy("leads: [nobody]\n"))
    assert message.startswith("policy.yaml:9: approvers.leads[0]: 'nobody' is not a valid email address")
