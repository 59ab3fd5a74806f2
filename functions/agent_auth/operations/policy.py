"""`agent-auth apply`: plan the policy's changes, and write them with their audit record."""

from __future__ import annotations

from dataclasses import dataclass

from agent_auth.audit import AuditRecord
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.policy.compiler import CompiledPolicy
from agent_auth.policy.plan import Plan, plan_changes
from agent_auth.records import SECRET_METHODS
from agent_auth.timefmt import iso_seconds


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    applied: bool
    agents_without_secret: list[str]


def apply_policy(target: Target, policy: CompiledPolicy, *, dry_run: bool = False) -> ApplyResult:
    current = target.agents.get_policy()
    stored = target.agents.list_client_ids()
    plan = plan_changes(current.get("document") if current else None, policy.document, stored)
    # Items an older release compiled lack fields this one reads (delegation, users): rewrite them.
    plan.items_outdated = current is not None and current.get("format") != policy.format
    needs_secret = [
        name
        for name, item in policy.agents.items()
        if item["auth_method"] in SECRET_METHODS and name in plan.agents_added
    ]
    if dry_run or plan.is_empty:
        return ApplyResult(plan, applied=False, agents_without_secret=needs_secret)
    now = target.clock.now()
    record = AuditRecord(
        action="policy.apply",
        decision="allow",
        at=now,
        operator=target.operator,
        details={"digest": policy.digest, **{k: v for k, v in plan.summary().items() if v}},
    )
    applied = target.agents.apply(
        policy.agents,
        removed=plan.agents_removed,
        groups=policy.groups,
        removed_groups=sorted(
            set((current or {}).get("document", {}).get("approvers", {})) - set(policy.groups)
        ),
        users=policy.users,
        policy={
            "document": policy.document,
            "digest": policy.digest,
            "format": policy.format,
            "applied_at": iso_seconds(now),
            "applied_by": target.operator,
        },
        previous_digest=current["digest"] if current else None,
        audit=target.audit.entry(record),
    )
    if not applied:
        raise OperationFailed(
            "the policy was changed by someone else while this plan was made; run apply again"
        )
    return ApplyResult(plan, applied=True, agents_without_secret=needs_secret)
