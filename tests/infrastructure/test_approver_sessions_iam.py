"""Approver groups with `sign_in: true`: the approvals function reads the approver's session, and only that.

It may GetItem on the sign-ins table (SignInTable.get_session) and nothing else there: sign-ins and
sessions are created only by the authorize function, which holds the upstream provider's secret."""

from __future__ import annotations

from agent_auth import routes, schema

from .synthesis import Synthesized
from .test_iam import arn_of, grants


def test_the_approvals_role_only_reads_sessions(synth: Synthesized) -> None:
    # Given the approvals function's role
    allowed = grants(synth, synth.role_id(synth.function_id(routes.APPROVALS)))
    signins = arn_of(synth.table_id(schema.SIGN_INS))
    # Then on the sign-ins table it may read an item, and write nothing
    assert {action for action, resource in allowed if resource == signins} == {"dynamodb:GetItem"}
    # And it still cannot reach the upstream provider's client secret
    assert not any(action.startswith("secretsmanager:") for action, _ in allowed)


def test_only_the_authorize_function_creates_sign_ins_and_sessions(synth: Synthesized) -> None:
    signins = arn_of(synth.table_id(schema.SIGN_INS))
    for spec in routes.ALL_FUNCTIONS:
        writes = {
            action
            for action, resource in grants(synth, synth.role_id(synth.function_id(spec)))
            if resource == signins and action != "dynamodb:GetItem"
        }
        assert not writes or spec is routes.AUTHORIZE, spec.name
