"""One synthesis of the default app for the whole infrastructure suite (bundling skipped)."""

from __future__ import annotations

import pytest

from .synthesis import Synthesized, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app as `cdk synth` builds it from cdk.json, but without bundling the Lambda code
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
