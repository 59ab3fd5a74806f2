"""The policy file: shape, references, conflicts, client keys; every error names file, line and fix."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from agent_auth.policy import source
from agent_auth.policy.compiler import compile_policy, load_policy, parse_policy
from agent_auth.policy.plan import plan_changes
from agent_auth.policy.source import PolicyInvalid
from tests.support import ROOT, rsa_key

BASE = """\
version: 1
audiences:
  crm:
    uri: https://crm.example.com
    scopes: {crm.read: Read, crm.write: Write}
roles:
  reader: [crm.read]
  editor: [crm.read, crm.write]
approvers:
  leads: [lead@example.com]
agents:
  bot:
    owner: owner@example.com
    auth: client_secret_basic
    roles: [reader]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy("policy.yaml", textwrap.dedent(text))
    return [str(p) for p in caught.value.problems]


def test_the_example_policy_is_valid() -> None:
    compiled = load_policy(str(ROOT / "examples" / "policy.yaml"))
    assert "support-bot" in compiled.agents


def test_compiled_agent_item_holds_everything_the_token_path_reads() -> None:
    item = compile_policy(parse_policy("p.yaml", BASE)).agents["bot"]
    assert item["client_id"] == "bot" and item["auth_method"] == "client_secret_basic"
    assert item["scopes"] == {"crm.read": "crm"}
    assert item["audiences"] == {"crm": "https://crm.example.com"}
    assert item["never"] == [] and "secret_hash" not in item


def test_unknown_key_names_line_and_allowed_keys() -> None:
    [message] = problems(BASE + "    colour: blue\n")
    assert message.startswith("policy.yaml:16: agents.bot.colour: unknown key 'colour'")
    assert "allowed here:" in message and "roles" in message


def test_dangling_role_names_line_and_choices() -> None:
    [message] = problems(BASE.replace("roles: [reader]", "roles: [admin]"))
    assert message.startswith("policy.yaml:15: agents.bot.roles[0]: unknown role 'admin'")
    assert "editor, reader" in message


def test_unknown_scope_in_role() -> None:
    [message] = problems(BASE.replace("reader: [crm.read]", "reader: [crm.delete]"))
    assert "policy.yaml:7:" in message and "unknown scope 'crm.delete'" in message


def test_unknown_approver_group() -> None:
    text = BASE + "    jit:\n      - role: editor\n        approvers: nobody\n"
    [message] = problems(text)
    assert (
        "policy.yaml:18:" in message and "unknown approver group 'nobody'" in message and "leads" in message
    )


def test_never_conflicting_with_a_role_is_an_error() -> None:
    [message] = problems(BASE + "    never: [crm.read]\n")
    assert "which `never` forbids" in message and "Fix:" in message


def test_jit_rule_needs_exactly_one_of_role_or_scopes_and_a_decider() -> None:
    found = problems(
        BASE + "    jit:\n      - role: editor\n        scopes: [crm.write]\n        auto: true\n"
    )
    assert any("exactly one of `role` or `scopes`" in m for m in found)


def test_duration_syntax() -> None:
    found = problems(
        BASE + "    jit:\n      - role: editor\n        auto: true\n        max_duration: soon\n"
    )
    assert any("30m, 1h or 1d" in m for m in found)


def test_duplicate_keys_are_refused() -> None:
    found = problems(BASE + "  bot:\n    owner: x@example.com\n    auth: none\n")
    assert any("key 'bot' appears twice" in m and "policy.yaml:16:" in m for m in found)


def test_yaml_syntax_error_names_the_line() -> None:
    [message] = problems("version: 1\nagents: [\n")
    assert message.startswith("policy.yaml:3:") and "YAML syntax" in message


def test_all_problems_of_a_kind_are_reported_at_once() -> None:
    # Shape problems are reported together; reference problems once the shape is right.
    assert len(problems(BASE.replace("version: 1", "version: 2") + "    colour: blue\n")) == 2
    text = BASE.replace("roles: [reader]", "roles: [admin]").replace("reader: [crm.read]", "reader: [nope]")
    assert len(problems(text)) == 2


def test_wrong_version() -> None:
    [message] = problems(BASE.replace("version: 1", "version: 2"))
    assert message.startswith("policy.yaml:1: version:")


def test_invalid_names_explain_the_format() -> None:
    [message] = problems(BASE.replace("  bot:", "  Bot_Agent!:"))
    assert "not a valid name" in message and "a-z, 0-9" in message


def test_private_key_jwt_needs_keys() -> None:
    [message] = problems(BASE.replace("client_secret_basic", "private_key_jwt"))
    assert "exactly one of `jwks` or `jwks_uri`" in message


@pytest.mark.parametrize(
    ("jwk", "expected"),
    [
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "k"}, "unsupported key type"),
        ({**rsa_key().jwk, "d": "AAAA"}, "private or symmetric key"),
        ({"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}, "at least 2048 bits"),
        ({**rsa_key().jwk, "alg": "ES256"}, "does not fit"),
        ({**rsa_key().jwk, "alg": "HS256"}, "does not fit"),
    ],
)
def test_client_keys_must_be_public_supported_and_pinned(jwk: dict[str, str], expected: str) -> None:
    text = BASE.replace("client_secret_basic", "private_key_jwt") + "    jwks:\n      keys:\n        - KEY\n"
    text = text.replace("KEY", __import__("json").dumps(jwk))
    assert any(expected in m for m in problems(text))


def test_keys_only_with_private_key_jwt() -> None:
    [message] = problems(BASE + "    jwks_uri: https://keys.example.com/jwks.json\n")
    assert "only used with private_key_jwt" in message


def test_public_client_cannot_hold_roles() -> None:
    [message] = problems(BASE.replace("client_secret_basic", "none"))
    assert "public client" in message


def test_a_scope_belongs_to_one_audience() -> None:
    text = BASE.replace(
        "roles:\n", "  other:\n    uri: https://other.example.com\n    scopes: {crm.read: Dup}\nroles:\n"
    )
    assert any("already a scope of audience 'crm'" in m for m in problems(text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(str(tmp_path / "missing.yaml"))
    assert "cannot read the file" in str(caught.value)


def test_plan_lists_added_changed_removed() -> None:
    old = compile_policy(parse_policy("p.yaml", BASE)).document
    new_text = (
        BASE.replace("roles: [reader]", "roles: [editor]").replace(
            "  editor: [crm.read, crm.write]\n", "  editor: [crm.read, crm.write]\n  auditor: [crm.read]\n"
        )
        + "  helper:\n    owner: o@example.com\n    auth: client_secret_post\n"
    )
    new = compile_policy(parse_policy("p.yaml", new_text)).document
    plan = plan_changes(old, new, stored_agents=["bot", "orphan"])
    assert plan.agents_added == ["helper"]
    assert plan.agents_changed == {"bot": ["roles"]}
    assert plan.agents_removed == ["orphan"]
    assert plan.roles_added == ["auditor"]
    assert plan.lines()[-1] == "2 to add, 1 to change, 1 to remove."


def test_plan_of_identical_policies_is_empty() -> None:
    document = compile_policy(parse_policy("p.yaml", BASE)).document
    assert plan_changes(document, document, ["bot"]).is_empty


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("    jit:\n      - scopes: []\n        auto: true\n", "at least 1 item"),
        (
            "    jwks:\n      keys:\n        - {kty: RSA, kid: [1], n: AQAB, e: AQAB}\n",
            "kid must be a string",
        ),
    ],
)
def test_malformed_rules_and_keys_are_reported_not_crashed(addition: str, expected: str) -> None:
    text = BASE if "jit" in addition else BASE.replace("client_secret_basic", "private_key_jwt")
    assert any(expected in m for m in problems(text + addition))


# The loader is bounded: a small file cannot make `agent-auth apply` work for minutes or crash it.

NO_ALIASES = "anchors and aliases are not supported in policy files: write the values out"


def billion_laughs() -> str:
    """The classic bomb: nine levels of nine aliases, 9**9 strings once expanded, in about 600 bytes."""
    lines = ["version: 1", 'lol1: &lol1 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(2, 10):
        lines.append(f"lol{level}: &lol{level} [" + ",".join([f"*lol{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_bomb_is_refused_at_once_with_its_line_and_the_fix(tmp_path: Path) -> None:
    # Given the classic alias bomb in a policy file
    bomb = billion_laughs()
    assert 500 <= len(bomb) <= 700
    file = tmp_path / "policy.yaml"
    file.write_text(bomb)
    # When apply loads it
    started = time.perf_counter()
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(str(file))
    elapsed = time.perf_counter() - started
    # Then it is refused well under a second, naming the file, the first anchor's line and the fix
    assert elapsed < 0.5
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{file}:2: ")
    assert "anchor" in problem.message and problem.fix == NO_ALIASES


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (BASE.replace("roles: [reader]", "roles: &standing [reader]"), 15, "anchor '&standing'"),
        (BASE + "  helper:\n    owner: o@example.com\n    auth: none\n    roles: *standing\n", 19, "alias"),
        (BASE + "    <<: {never: [crm.write]}\n", 16, "merge key"),
        (BASE + "    never: [<<]\n", 16, "merge key"),
    ],
)
def test_anchors_aliases_and_merge_keys_are_refused_with_their_line(text: str, line: int, what: str) -> None:
    # Given a policy that shares or merges values instead of writing them out
    # When it is parsed
    [message] = problems(text)
    # Then the problem names the line, what was found and the fix
    assert message.startswith(f"policy.yaml:{line}:") and what in message
    assert "not supported in policy files: write the values out" in message


def test_anchor_and_alias_characters_in_comments_and_quoted_text_are_fine() -> None:
    # Given '&', '*' and '<<' only inside a comment, a quoted scope description and a plain value
    text = BASE.replace(
        "scopes: {crm.read: Read, crm.write: Write}",
        "scopes: {crm.read: \"Read &a *a <<: x\", crm.write: 'Write *b'}  # &c *c <<",
    ).replace("owner: owner@example.com", "owner: owner@example.com # see &defaults")
    # When it is parsed
    compiled = compile_policy(parse_policy("policy.yaml", text))
    # Then it is valid and the text is kept as written
    assert compiled.agents["bot"]["client_id"] == "bot"
    assert compiled.document["audiences"]["crm"]["scopes"]["crm.read"] == "Read &a *a <<: x"


def test_deep_nesting_is_refused_before_it_is_parsed() -> None:
    # Given a document nested far deeper than any policy (and deeper than Python's recursion limit)
    text = "version: 1\nagents: " + "[" * 50_000 + "]" * 50_000 + "\n"
    # When it is parsed
    started = time.perf_counter()
    [message] = problems(text)
    # Then it is refused at the line where the nesting is, without reading the rest (PyYAML's scanner
    # looks up to 1024 characters ahead for a key on the line, which costs it a few tenths of a second)
    assert time.perf_counter() - started < 2
    assert message.startswith("policy.yaml:2:") and f"deeper than {source.MAX_DEPTH} levels" in message


def test_too_many_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a limit on values (lowered here so the test stays fast) and a file with more
    monkeypatch.setattr(source, "MAX_NODES", 40)
    text = BASE + "    never: [" + ", ".join(["crm.write"] * 40) + "]\n"
    # When it is parsed
    [message] = problems(text)
    # Then it is refused, with the line where the limit was passed
    assert message.startswith("policy.yaml:16:") and "more than 40 values" in message
    assert "split" in message


def test_the_value_limit_leaves_room_for_large_policies() -> None:
    assert source.MAX_NODES >= 50_000 and source.MAX_DEPTH >= 16


def test_oversized_text_is_refused_without_parsing() -> None:
    # Given text beyond the size limit, even when handed over as a string rather than a file
    text = BASE + "#" * source.MAX_POLICY_BYTES
    # When it is parsed
    [message] = problems(text)
    # Then it is refused for its size
    assert message == "policy.yaml:1: the file is larger than 1 MiB. Fix: split it up"


def test_an_endless_file_is_read_only_up_to_the_limit() -> None:
    # Given a "file" that never ends
    if not Path("/dev/zero").exists():
        pytest.skip("needs /dev/zero")
    # When apply loads it, Then only the limit is read, and it is refused for its size
    with pytest.raises(PolicyInvalid) as caught:
        load_policy("/dev/zero")
    assert "larger than 1 MiB" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    ["2001-02-30", "1" * 5000, "!!python/object:os.system echo", "!!binary A"],
)
def test_values_yaml_cannot_construct_are_problems_not_crashes(value: str) -> None:
    # Given a value that looks like a date, a number or a tag but cannot be built
    # When it is parsed
    [message] = problems(BASE.replace("owner: owner@example.com", f"owner: {value}"))
    # Then it is a problem on its line, with the fix to quote it
    assert message.startswith("policy.yaml:13:") and "cannot be read" in message and "quote" in message


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8931/mcp", "http://[::1]:8931/mcp", "http://localhost/mcp"]
)
def test_an_audience_may_be_plain_http_on_a_loopback_address(uri: str) -> None:
    # Given a resource server a developer runs on their own machine (an MCP server on loopback)
    # When the policy names it as an audience, Then it is valid, as a loopback redirect URI is
    policy = parse_policy("policy.yaml", BASE.replace("https://crm.example.com", uri))
    assert policy.audiences["crm"].uri == uri


@pytest.mark.parametrize(
    "uri", ["http://crm.example.com", "http://10.0.0.1/mcp", "http://127.0.0.1.example.com/"]
)
def test_an_audience_elsewhere_must_be_https(uri: str) -> None:
    [message] = problems(BASE.replace("https://crm.example.com", uri))
    assert "only on a loopback address" in message
