"""The README for a literal reader: its links stay in the repository and exist, every CLI line in it
parses as written (with the `.venv/bin/` that `make dev` puts it in), the policy files it names exist,
and the example policy's comments say how each agent really authenticates."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from agent_auth.cli.main import _parser
from tests.support import ROOT

README = (ROOT / "README.md").read_text()
PAGES = {path.name: path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_links_point_inside_the_repository_at_files_that_exist(page: str) -> None:
    base = ROOT if page == "README.md" else ROOT / "docs"
    for target in re.findall(r"\]\(([^)\s]+)\)", PAGES[page]):
        assert not re.match(r"[a-z]+:", target), f"{page} links outside the repository: {target}"
        assert (base / target.split("#")[0]).exists(), f"{page} links a missing file: {target}"


def cli_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith((".venv/bin/agent-auth", "agent-auth "))]


def test_every_cli_line_of_the_readme_parses_as_written() -> None:
    lines = cli_lines()
    assert any(line.startswith(".venv/bin/agent-auth ") for line in lines), "say where the CLI is"
    for line in lines:
        argv = shlex.split(line)[1:]
        try:
            _parser().parse_args(argv)
        except SystemExit as stop:
            raise AssertionError(f"README line does not parse: {line}") from stop
        for word in argv:
            if word.endswith(".yaml"):
                assert (ROOT / word).exists(), f"README names a missing file: {word}"


def test_the_example_policy_comments_say_how_each_agent_authenticates() -> None:
    text = (ROOT / "examples" / "policy.yaml").read_text()
    agents = yaml.safe_load(text)["agents"]
    words = {
        "client_secret_basic": "secret",
        "client_secret_post": "secret",
        "private_key_jwt": "key",
        "none": "no secret",
    }
    for name, agent in agents.items():
        comment = re.search(rf"((?:\n  #[^\n]*)+)\n  {re.escape(name)}:", text)
        assert comment, f"examples/policy.yaml: no comment above {name}"
        said = comment.group(1).lower()
        assert words[agent["auth"]] in said, f"{name}: the comment does not say it uses {agent['auth']}"
        if agent["auth"] != "private_key_jwt":
            assert "jwt" not in said and "signed" not in said, f"{name}: the comment says it signs JWTs"
