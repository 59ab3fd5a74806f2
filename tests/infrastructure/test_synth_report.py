"""`make synth` prints where each template is, its size and its resource count."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .synthesis import INFRA_DIR, Synthesized

MAKEFILE = INFRA_DIR.parent / "Makefile"


def test_report_names_each_template_with_size_and_resource_count(synth: Synthesized) -> None:
    import synth_report

    # When the report reads the synthesized app
    lines = synth_report.report(synth.outdir)

    # Then it says where, and for the template its size and resource count against CloudFormation's limits
    assert lines[0] == f"templates in {synth.outdir.resolve()}:"
    (summary,) = [line for line in lines if line.startswith("  AgentAuth.template.json: ")]
    size = (synth.outdir / "AgentAuth.template.json").stat().st_size
    assert f"{size / 1000:.1f} kB" in summary
    assert re.search(rf"\b{len(synth.resources)} resources \(\d+% of 500\)", summary)
    functions = len(synth.of_type("AWS::Lambda::Function"))
    assert f"    {functions:4d} AWS::Lambda::Function" in lines


def test_report_refuses_an_empty_directory(tmp_path: Path) -> None:
    import synth_report

    with pytest.raises(SystemExit, match="no templates"):
        synth_report.report(tmp_path)


def test_make_synth_writes_cdk_out_and_prints_the_report() -> None:
    target = MAKEFILE.read_text().split("\nsynth:", 1)[1].split("\n\n", 1)[0]
    assert "CDK_OUTDIR=cdk.out" in target and "infra/app.py" in target
    assert "infra/synth_report.py cdk.out" in target
