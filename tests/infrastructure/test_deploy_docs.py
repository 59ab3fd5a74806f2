"""docs/deploy.md stays in step with the stack: every context key is documented, the Athena table reads
where Firehose writes."""

from __future__ import annotations

import re
from pathlib import Path

from agent_auth_infra import settings
from agent_auth_infra.application import cdk_json_context
from agent_auth_infra.audit_export import EXPORT_PREFIX, PARTITIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
README = DOCS.parents[1] / "README.md"


def test_every_context_key_of_the_settings_is_documented() -> None:
    # Given every context key the settings read (the module's upper-case string constants naming keys)
    keys = {
        value
        for name, value in vars(settings).items()
        if name.isupper() and isinstance(value, str) and value in cdk_json_context()
    }
    assert {"mailFrom", "stage", "domainName", "waf", "alarmEmail", "logRetentionDays"} <= keys
    # Then docs/deploy.md names each one
    text = DOCS.read_text()
    assert sorted(key for key in keys if f"`{key}`" not in text) == []


def test_the_athena_table_reads_where_firehose_writes() -> None:
    text = DOCS.read_text()
    assert f"LOCATION 's3://BUCKET/{EXPORT_PREFIX}'" in text
    # Firehose's !{timestamp:yyyy} partitions are Athena's ${year}, and so on
    template = re.sub(
        r"!\{timestamp:(\w+)\}",
        lambda m: {"yyyy": "${year}", "MM": "${month}", "dd": "${day}"}[m[1]],
        PARTITIONS,
    )
    assert f"'storage.location.template' = 's3://BUCKET/{EXPORT_PREFIX}{template}'" in text


def test_readme_points_to_the_deploy_guide_and_the_guide_leaves_cost_to_the_lead() -> None:
    deploy_section = README.read_text().split("## Deploy\n", 1)[1].split("\n## ", 1)[0]
    assert "docs/deploy.md" in deploy_section
    text = DOCS.read_text()
    for heading in (
        "## Prerequisites",
        "## Bootstrap",
        "## Deploy",
        "## The first policy",
        "## Upgrading",
        "## Tearing down",
        "## Cost",
        "## Rotating keys",
    ):
        assert heading in text, heading
    assert "key-rotation.md" in text.split("## Rotating keys", 1)[1].split("\n## ", 1)[0]


def test_the_cost_table_adds_up() -> None:
    # Given the cost table of docs/deploy.md: each item's figure per million tokens is the last bold amount
    # of its row, and the total row says "about $X"
    section = DOCS.read_text().split("## Cost", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "**" in line]
    total_row = next(row for row in rows if row.startswith("| **total**"))
    items = [row for row in rows if row is not total_row]
    amounts = [float(re.findall(r"\*\*\$([\d,.]+)\*\*", row)[-1].replace(",", "")) for row in items]
    total = float(re.search(r"\*\*about \$([\d.]+)\*\*", total_row)[1])  # type: ignore[index]
    # Then the items add up to the total, to the cent of rounding each line
    assert len(amounts) == 8
    assert abs(sum(amounts) - total) < 0.05
    # And the README quotes the same total
    assert f"**${total:.2f}**" in README.read_text()
