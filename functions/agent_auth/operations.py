"""What operators do: apply a policy, rotate a secret, read the audit trail. The CLI is only the glue.

Every change is audited in the same DynamoDB transaction as the change itself, naming the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_auth import schema
from agent_auth.adapters.dynamodb import AgentTable, AuditTable
from agent_auth.adapters.jit_tables import GrantTable, RequestTable
from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock, SystemClock
from agent_auth.oauth.client_secrets import generate_secret, hash_secret
from agent_auth.policy.compiler import CompiledPolicy
from agent_auth.policy.plan import Plan, plan_changes

SECRET_METHODS = ("client_secret_basic", "client_secret_post")


class OperationFailed(Exception):
    """A refusal the operator can act on; the message says how."""


@dataclass(frozen=True)
class Target:
    """Where the operation goes: the development server or a deployed stack."""

    name: str
    agents: AgentTable
    audit: AuditTable
    requests: RequestTable
    grants: GrantTable
    operator: str
    issuer: str

    @classmethod
    def connect(
        cls,
        *,
        name: str,
        dynamodb: Any,
        table_names: Callable[[schema.TableSpec], str],
        operator: str,
        issuer: str,
    ) -> Target:
        """`table_names` maps each table spec to its deployed name (from settings or stack outputs)."""
        return cls(
            name=name,
            agents=AgentTable(dynamodb, table_names(schema.AGENTS)),
            audit=AuditTable(dynamodb, table_names(schema.AUDIT)),
            requests=RequestTable(dynamodb, table_names(schema.REQUESTS), table_names(schema.GRANTS)),
            grants=GrantTable(dynamodb, table_names(schema.GRANTS)),
            operator=operator,
            issuer=issuer,
        )


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    applied: bool
    agents_without_secret: list[str]


def apply_policy(
    target: Target, policy: CompiledPolicy, *, dry_run: bool = False, clock: Clock | None = None
) -> ApplyResult:
    clock = clock or SystemClock()
    current = target.agents.get_policy()
    stored = target.agents.list_client_ids()
    plan = plan_changes(current.get("document") if current else None, policy.document, stored)
    needs_secret = [
        name
        for name, item in policy.agents.items()
        if item["auth_method"] in SECRET_METHODS and name in plan.agents_added
    ]
    if dry_run or plan.is_empty:
        return ApplyResult(plan, applied=False, agents_without_secret=needs_secret)
    now = clock.now()
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
        policy={
            "document": policy.document,
            "digest": policy.digest,
            "applied_at": _iso(now),
            "applied_by": target.operator,
        },
        previous_digest=current["digest"] if current else None,
        audit=target.audit.transact_put(record),
    )
    if not applied:
        raise OperationFailed(
            "the policy was changed by someone else while this plan was made; run apply again"
        )
    return ApplyResult(plan, applied=True, agents_without_secret=needs_secret)


def rotate_secret(target: Target, client_id: str, clock: Clock | None = None) -> dict[str, str]:
    """A new secret, returned once; only its hash is stored. The old secret stops working at once."""
    clock = clock or SystemClock()
    secret = generate_secret()
    now = clock.now()
    record = AuditRecord(
        action="secret.rotate", decision="allow", at=now, client_id=client_id, operator=target.operator
    )
    if not target.agents.set_secret_hash(
        client_id, hash_secret(secret), _iso(now), target.audit.transact_put(record)
    ):
        item = target.agents.get_client(client_id)
        if item is None:
            raise OperationFailed(
                f"no agent named {client_id!r} in {target.name}; is it in the applied policy?"
            )
        raise OperationFailed(
            f"{client_id} authenticates with {item['auth_method']}, not a client secret; nothing to rotate"
        )
    return {"client_id": client_id, "client_secret": secret}


def read_audit(
    target: Target, *, since: float, agent: str | None = None, limit: int = 1000, clock: Clock | None = None
) -> list[dict[str, Any]]:
    now = (clock or SystemClock()).now()
    return target.audit.query(since=since, until=now, client_id=agent, limit=limit)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def list_requests(target: Target, limit: int = 200) -> list[dict[str, Any]]:
    """Access requests, newest first, with their status as of now (a pending one past its end is expired)."""
    now = int(SystemClock().now())
    requests = target.requests.list_requests(limit)
    for request in requests:
        if request["status"] == "pending" and now >= int(request["expires_at"]):
            request["status"] = "expired"
    return requests


def revoke_grant(target: Target, grant_id: str, clock: Clock | None = None) -> dict[str, Any]:
    """End a grant at once: no new token draws on it. (Tokens already issued run to their exp, at most
    the token lifetime; refusing them at introspection comes with the token lifecycle.)"""
    now = int((clock or SystemClock()).now())
    request = target.requests.get_request(grant_id) if len(grant_id) <= 64 else None
    if request is None or request["status"] != "approved":
        raise OperationFailed(f"no grant {grant_id!r} in {target.name}; `agent-auth requests` lists them")
    record = AuditRecord(
        action="grant.revoke",
        decision="allow",
        at=now,
        client_id=request["client_id"],
        operator=target.operator,
        details={"grant": grant_id},
    )
    if not target.grants.revoke(request["client_id"], grant_id, now, target.audit.transact_put(record)):
        raise OperationFailed(f"no grant {grant_id!r} in {target.name}")
    return {"grant_id": grant_id, "client_id": request["client_id"], "revoked_at": _iso(now)}
