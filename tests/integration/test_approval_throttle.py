"""A source that sends bad approval links is slowed down: past the limit it waits out the window, and
is refused before any KMS call or read (issue: "slow down a source that sends bad links")."""

from __future__ import annotations

from collections import Counter

from agent_auth.oauth.throttle import ThrottleLimits
from tests.conftest import Deployment
from tests.integration.jit_support import open_link
from tests.integration.test_access_requests import asked_and_mailed
from tests.support import recording_aws_calls

LIMIT = ThrottleLimits().source_failures


def forged(link: str) -> str:
    return link.replace("sig=", "sig=AAAA", 1)


def test_bad_links_past_the_limit_are_refused_without_kms(deployment: Deployment, clock: object) -> None:
    _, link = asked_and_mailed(deployment)
    # Given a source that sent as many forged links as the limit allows
    for _ in range(LIMIT + 1):
        assert open_link(forged(link)).status == 403

    # When it opens even the genuine link
    with recording_aws_calls() as log:
        refused = open_link(link)

    # Then it is refused with 429 after one read (its counter) and the audit write: no KMS call, no read
    # of the request
    assert refused.status == 429 and "Too many invalid links" in refused.body
    assert log.calls == Counter({"dynamodb:GetItem": 1, "dynamodb:PutItem": 1})
    record = deployment.audit_records()[0]
    assert record["action"] == "approval.view" and record["reason"] == "too_many_bad_links"


def test_after_the_window_the_genuine_link_opens_again(deployment: Deployment, clock: object) -> None:
    _, link = asked_and_mailed(deployment)
    for _ in range(LIMIT + 1):
        open_link(forged(link))
    assert open_link(link).status == 429
    clock.offset += ThrottleLimits().window + 1  # type: ignore[attr-defined]
    assert open_link(link).status == 200


def test_a_few_bad_links_do_not_lock_anyone_out(deployment: Deployment, clock: object) -> None:
    _, link = asked_and_mailed(deployment)
    for _ in range(LIMIT - 1):
        open_link(forged(link))
    assert open_link(link).status == 200
