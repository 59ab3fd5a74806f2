"""The policy keys of delegated access: `users`, `delegation`, public agents (`auth: none`), and the keys
of features not built yet. Every error names the file, the line and the fix."""

from __future__ import annotations

import textwrap

import pytest

from agent_auth.adapters.records_codec import agent_from_item, users_from_item
from agent_auth.policy.compiler import COMPILED_FORMAT, compile_policy, load_policy, parse_policy
from agent_auth.policy.plan import plan_changes
from agent_auth.policy.source import PolicyInvalid
from agent_auth.records import Delegation
from tests.support import ROOT

BASE = """\
version: 1
audiences:
  crm:
    uri: https://crm.example.com
    scopes: {crm.read: Read contacts, crm.write: Change contacts}
  billing:
    uri: https://billing.example.com
    scopes: {billing.read: Read invoices}
roles:
  reader: [crm.read]
  editor: [crm.read, crm.write]
  biller: [billing.read]
users:
  Alice@Example.com: [editor, biller]
  group:support: [reader]
agents:
  bot:
    owner: owner@example.com
    auth: client_secret_basic
    roles: [reader]
    delegation:
      redirect_uris: [https://bot.example.com/callback]
      scopes: [crm.write, crm.read, billing.read]
  cli:
    owner: owner@example.com
    auth: none
    delegation:
      redirect_uris: [http://127.0.0.1:8765/callback, "http://[::1]/callback"]
      scopes: [crm.read]
      offline_access: false
      consent: every_time
"""


def line_of(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of the first `needle` after the first `after`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy("policy.yaml", textwrap.dedent(text))
    return [str(p) for p in caught.value.problems]


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --- what a valid policy compiles to ---------------------------------------------------------------------


def test_users_compile_to_scopes_by_lower_cased_email_and_by_group() -> None:
    # Given a policy with users by address (mixed case) and by group / When it is compiled
    compiled = compile_policy(parse_policy("policy.yaml", BASE))

    # Then each address (lower-cased) and group maps to the sorted scopes of its roles
    assert compiled.users == {
        "by_email": {"alice@example.com": ["billing.read", "crm.read", "crm.write"]},
        "by_group": {"support": ["crm.read"]},
    }
    # And the directory the request path reads answers for the address in any case, and for groups
    directory = users_from_item(compiled.users)
    assert directory.scopes_for("ALICE@example.com") == {"billing.read", "crm.read", "crm.write"}
    assert directory.scopes_for("bob@example.com", ("support",)) == {"crm.read"}
    assert directory.scopes_for("bob@example.com") == frozenset()


def test_a_policy_without_users_compiles_an_empty_directory() -> None:
    text = BASE.split("users:", maxsplit=1)[0] + "agents: {}\n"
    assert compile_policy(parse_policy("policy.yaml", text)).users == {"by_email": {}, "by_group": {}}


def test_delegation_compiles_onto_the_agent_item_with_each_scopes_audience() -> None:
    # Given an agent whose delegation scopes span two audiences / When the policy is compiled
    item = compile_policy(parse_policy("policy.yaml", BASE)).agents["bot"]

    # Then the item holds the delegation block, scopes sorted, with the defaults filled in
    assert item["delegation"] == {
        "redirect_uris": ["https://bot.example.com/callback"],
        "scopes": ["billing.read", "crm.read", "crm.write"],
        "offline_access": True,
        "consent": "remember",
        "scope_audiences": {"billing.read": "billing", "crm.read": "crm", "crm.write": "crm"},
    }
    # And the audiences map reaches the delegation audiences, while standing access stays the roles'
    assert item["audiences"] == {"billing": "https://billing.example.com", "crm": "https://crm.example.com"}
    assert item["scopes"] == {"crm.read": "crm"}
    # And the consent page can describe every delegation scope
    assert item["descriptions"] == {
        "billing.read": "Read invoices",
        "crm.read": "Read contacts",
        "crm.write": "Change contacts",
    }


def test_the_agent_record_carries_the_delegation() -> None:
    # Given the compiled items / When the request path reads them as records
    agents = compile_policy(parse_policy("policy.yaml", BASE)).agents
    bot, cli = agent_from_item(agents["bot"]), agent_from_item(agents["cli"])

    # Then Agent.delegation holds what the policy said, with each scope's audience
    assert bot.delegation == Delegation(
        redirect_uris=("https://bot.example.com/callback",),
        scopes=("billing.read", "crm.read", "crm.write"),
        offline_access=True,
        consent="remember",
        scope_audiences={"billing.read": "billing", "crm.read": "crm", "crm.write": "crm"},
    )
    assert cli.is_public and cli.delegation is not None
    assert cli.delegation.offline_access is False and cli.delegation.consent == "every_time"
    assert cli.delegation.redirect_uris == ("http://127.0.0.1:8765/callback", "http://[::1]/callback")
    assert cli.scopes == {} and cli.audiences == {"crm": "https://crm.example.com"}


def test_an_agent_without_delegation_cannot_act_for_users() -> None:
    text = BASE.replace(
        "    delegation:\n      redirect_uris: [https://bot.example.com/callback]\n"
        "      scopes: [crm.write, crm.read, billing.read]\n",
        "",
    )
    item = compile_policy(parse_policy("policy.yaml", text)).agents["bot"]
    # None, so that apply removes a delegation the agent had before
    assert "delegation" in item and item["delegation"] is None
    assert agent_from_item(item).delegation is None
    assert item["audiences"] == {"crm": "https://crm.example.com"}


def test_the_example_policy_has_users_a_public_client_and_delegation() -> None:
    compiled = load_policy(str(ROOT / "examples" / "policy.yaml"))
    assert compiled.users["by_email"] == {"alice@example.com": ["crm.contacts.read", "crm.contacts.write"]}
    assert compiled.users["by_group"] == {"support": ["crm.contacts.read"]}
    mcp = agent_from_item(compiled.agents["mcp-client"])
    assert mcp.is_public and mcp.delegation is not None
    assert mcp.delegation.redirect_uris == ("http://127.0.0.1:8765/callback",)
    assert mcp.delegation.scopes == ("crm.contacts.read", "crm.contacts.write")
    support = agent_from_item(compiled.agents["support-bot"])
    assert support.delegation is not None and support.delegation.scopes == ("crm.contacts.read",)
    assert compiled.format == COMPILED_FORMAT


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8765/callback",
        "http://[::1]:8765/callback",
        "http://localhost:3000/cb",
        "https://app.example.com/cb?tenant=1",
    ],
)
def test_accepted_redirect_uris(uri: str) -> None:
    text = BASE.replace("https://bot.example.com/callback", f'"{uri}"')
    assert compile_policy(parse_policy("policy.yaml", text)).agents["bot"]["delegation"]["redirect_uris"] == [
        uri
    ]


# --- users: errors ------------------------------------------------------------------------------------------


def test_a_user_with_an_unknown_role_names_the_line_and_the_roles() -> None:
    text = BASE.replace("group:support: [reader]", "group:support: [readr]")
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, 'group:support')}: users.group:support[0]:")
    assert "unknown role 'readr'" in message and "Fix: define it under `roles:`" in message
    assert "biller, editor, reader" in message


@pytest.mark.parametrize(
    ("who", "expected", "fix"),
    [
        ("alice", "'alice' is neither an email address nor group:NAME", "alice@example.com, or group:NAME"),
        ("alice@localhost", "neither an email address nor group:NAME", "alice@example.com"),
        ("group:", "'group:' is not a valid group", "write group:NAME"),
        ("group:Support Team", "'group:Support Team' is not a valid group", "write group:NAME"),
        ("group:support\\n", "is not a valid group", "write group:NAME"),
        ("alice@example.com\\n", "neither an email address nor group:NAME", "alice@example.com"),
    ],
)
def test_user_keys_are_addresses_or_groups(who: str, expected: str, fix: str) -> None:
    text = BASE.replace("group:support: [reader]", f'"{who}": [reader]')
    message = one_problem(text)
    key = who.replace("\\n", "\n")  # YAML's "\n" in a quoted key is a newline
    assert message.startswith(f"policy.yaml:{line_of(text, who)}: users.{key}:")
    assert expected in message and fix in message.split(". Fix: ")[1]


def test_two_entries_for_one_address_are_refused() -> None:
    text = BASE.replace("group:support: [reader]", "alice@example.com: [reader]")
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, 'alice@example.com')}: users.alice@example.com:")
    assert "same address as 'Alice@Example.com'" in message and "Fix: keep one of them" in message


def test_a_user_needs_a_role() -> None:
    text = BASE.replace("group:support: [reader]", "group:support: []")
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, 'group:support')}: users.group:support:")
    assert "at least one role" in message and "Fix:" in message


# --- delegation: errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://app.example.com/cb", "http only on a loopback address"),
        ("http://127.0.0.2/cb", "http only on a loopback address"),
        ("https://app.example.com/cb#done", "without a fragment"),
        ("https://app.example.com/cb#", "without a fragment"),
        ("/callback", "absolute http(s) URI"),
        ("com.example.app:/callback", "absolute http(s) URI"),
        ("https://app.example.com:99999/cb", "not a valid URI"),
        ("https://app.example.com/c b", "without a fragment or spaces"),
    ],
)
def test_redirect_uris_are_absolute_https_or_loopback_without_fragment(uri: str, expected: str) -> None:
    text = BASE.replace("https://bot.example.com/callback", f'"{uri}"')
    message = one_problem(text)
    where = "agents.bot.delegation.redirect_uris[0]"
    assert message.startswith(f"policy.yaml:{line_of(text, uri)}: {where}:"), message
    assert expected in message and "Fix:" in message


def test_a_redirect_uri_listed_twice() -> None:
    uri = "https://bot.example.com/callback"
    text = BASE.replace(f"[{uri}]", f"[{uri}, {uri}]")
    message = one_problem(text)
    assert "agents.bot.delegation.redirect_uris[1]" in message and "listed twice" in message


def test_a_delegation_scope_must_be_a_scope_of_an_audience() -> None:
    text = BASE.replace("scopes: [crm.write, crm.read, billing.read]", "scopes: [crm.read, crm.delete]")
    message = one_problem(text)
    assert message.startswith(
        f"policy.yaml:{line_of(text, 'crm.delete')}: agents.bot.delegation.scopes[1]: "
        "unknown scope 'crm.delete'"
    )
    assert "Fix: declare it under an audience's `scopes:`" in message


def test_a_delegation_scope_in_never_is_a_conflict() -> None:
    text = BASE.replace("    roles: [reader]\n", "    roles: [reader]\n    never: [billing.read]\n")
    message = one_problem(text)
    assert "agents.bot.delegation.scopes" in message and "billing.read is also in `never`" in message


def test_unknown_key_in_delegation_lists_the_allowed_keys() -> None:
    text = BASE.replace("      consent: every_time\n", "      consent: every_time\n      remember: true\n")
    message = one_problem(text)
    assert message.startswith(
        f"policy.yaml:{line_of(text, 'remember: true')}: agents.cli.delegation.remember: "
        "unknown key 'remember'"
    )
    assert "allowed here: consent, offline_access, redirect_uris, scopes" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [("consent: always", "'remember' or 'every_time'"), ("offline_access: maybe", "valid boolean")],
)
def test_delegation_options_have_fixed_values(line: str, expected: str) -> None:
    key = line.split(":", maxsplit=1)[0]
    kept = [row for row in BASE.splitlines() if not row.strip().startswith(key)]
    text = "\n".join(kept) + f"\n      {line}\n"
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, line)}: agents.cli.delegation.{key}:")
    assert expected in message and "Fix:" in message


def test_delegation_needs_redirect_uris_and_scopes() -> None:
    text = BASE.replace("      scopes: [crm.read]\n", "")
    message = one_problem(text)
    assert "agents.cli.delegation.scopes: required key 'scopes' is missing" in message


@pytest.mark.parametrize("scope", ["openid", "offline_access"])
def test_protocol_scopes_cannot_be_declared_by_an_audience(scope: str) -> None:
    text = BASE.replace("{billing.read: Read invoices}", f"{{billing.read: Read invoices, {scope}: Mine}}")
    message = one_problem(text)
    assert f"audiences.billing.scopes.{scope}: '{scope}' is a protocol scope" in message
    assert "Fix: rename the scope" in message


# --- public agents -----------------------------------------------------------------------------------------


def test_a_public_agent_needs_a_delegation_block() -> None:
    text = BASE.split("  cli:", maxsplit=1)[0] + "  cli:\n    owner: owner@example.com\n    auth: none\n"
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, 'auth: none')}: agents.cli.auth:")
    assert "needs a `delegation` block (a public agent can only act for users)" in message
    assert "Fix:" in message and "add `delegation:" in message


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("    roles: [reader]\n", "cannot hold roles"),
        ("    jit:\n      - role: editor\n        auto: true\n", "cannot have just-in-time rules"),
    ],
)
def test_a_public_agent_cannot_authenticate_so_holds_nothing_standing(addition: str, expected: str) -> None:
    text = BASE + addition
    message = one_problem(text)
    assert message.startswith(f"policy.yaml:{line_of(text, 'auth: none')}: agents.cli.auth: a public client")
    assert expected in message and "remove `roles`/`jit`" in message


def test_a_public_agent_has_no_keys() -> None:
    message = one_problem(BASE + "    jwks_uri: https://keys.example.com/jwks.json\n")
    assert "agents.cli.auth: keys are only used with private_key_jwt, not none" in message


# --- token exchange keys, now built (they were refused while it was not) ------------------------------


def test_exchange_is_accepted_now_that_token_exchange_exists() -> None:
    text = BASE.replace(
        "    roles: [reader]\n", "    roles: [reader]\n    exchange:\n      audiences: [crm]\n"
    )
    compiled = compile_policy(parse_policy("policy.yaml", text))
    assert compiled.agents["bot"]["exchange"]["audiences"]["crm"]["uri"] == "https://crm.example.com"


@pytest.mark.parametrize(
    "value",
    ["[]", "\n  - {issuer: https://idp.example.com, jwks_uri: https://idp.example.com/keys, audience: x}"],
)
def test_trusted_issuers_are_accepted_now_that_token_exchange_exists(value: str) -> None:
    text = BASE.replace("agents:\n", f"trusted_issuers: {value}\nagents:\n")
    assert parse_policy("policy.yaml", text).trusted_issuers is not None


def test_a_users_change_is_planned() -> None:
    # Given the applied policy and one that gives a group another role
    old = compile_policy(parse_policy("p.yaml", BASE)).document
    new = compile_policy(
        parse_policy("p.yaml", BASE.replace("group:support: [reader]", "group:support: [editor]"))
    )

    # Then the plan shows the users section as changed
    plan = plan_changes(old, new.document, ["bot", "cli"])
    assert plan.sections_changed == ["users"] and "  ~ users" in plan.lines()
