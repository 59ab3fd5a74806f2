"""After `make synth`: where the templates are, and how close each is to CloudFormation's limits.

CloudFormation accepts a template of at most 1 MB (through S3, as `cdk deploy` uploads it) with at most 500
resources; the report prints each template's size and resource count against those, so growth is seen
long before a deploy fails.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

MAX_TEMPLATE_BYTES = 1_000_000
MAX_RESOURCES = 500


def report(outdir: Path) -> list[str]:
    templates = sorted(outdir.glob("*.template.json"))
    if not templates:
        raise SystemExit(f"no templates in {outdir}: run the synth first")
    lines = [f"templates in {outdir.resolve()}:"]
    for template in templates:
        resources = json.loads(template.read_text()).get("Resources", {})
        size = template.stat().st_size
        lines.append(
            f"  {template.name}: {size / 1000:.1f} kB ({size / MAX_TEMPLATE_BYTES:.0%} of 1 MB), "
            f"{len(resources)} resources ({len(resources) / MAX_RESOURCES:.0%} of {MAX_RESOURCES})"
        )
        for resource_type, count in sorted(Counter(r["Type"] for r in resources.values()).items()):
            lines.append(f"    {count:4d} {resource_type}")
    return lines


if __name__ == "__main__":
    print("\n".join(report(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out"))))
