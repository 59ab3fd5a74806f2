"""One synthesis of the default app for the whole infrastructure suite (bundling skipped)."""

from __future__ import annotations

import pytest

from .synthesis import Synthesized, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app as `cdk synth` builds it from cdk.json, but without bundling the Lambda code
    return synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app deployed with the opt-out -c signingKeyRotation=false: the stack key signs, as before
    # rotation became the default (docs/key-rotation.md)
    return synthesize(tmp_path_factory.mktemp("cdk.out.fixed"), {"signingKeyRotation": "false"})


FULL_CONTEXT = {
    "alarmEmail": "oncall@example.com",
    "waf": True,
    "stage": "prod",
    "domainName": "auth.example.com",
    "certificateArn": "arn:aws:acm:eu-west-1:111122223333:certificate/11111111-2222-3333-4444-555555555555",
    "hostedZoneId": "Z0123456789ABCDEFGHIJ",
    "auditObjectLock": True,
    "logRetentionDays": 30,
    "reservedConcurrency": {"token": 20, "notifier": 2},
}
"""Every optional feature on at once, so one more synthesis covers them all."""


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # Given the app with every optional feature chosen through context
    return synthesize(tmp_path_factory.mktemp("cdk.out.full"), FULL_CONTEXT)
