"""What `apply` will change, computed from the applied policy document and the new one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OTHER_SECTIONS = ("audiences", "approvers", "users", "trusted_issuers")


@dataclass
class Plan:
    agents_added: list[str] = field(default_factory=list)
    agents_changed: dict[str, list[str]] = field(default_factory=dict)
    agents_removed: list[str] = field(default_factory=list)
    roles_added: list[str] = field(default_factory=list)
    roles_changed: list[str] = field(default_factory=list)
    roles_removed: list[str] = field(default_factory=list)
    sections_changed: list[str] = field(default_factory=list)
    items_outdated: bool = False
    """The applied items were compiled by an older release: apply rewrites them all."""

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def lines(self) -> list[str]:
        out = [f"  + agent {a}" for a in self.agents_added]
        out += [f"  ~ agent {a} ({', '.join(fields)})" for a, fields in self.agents_changed.items()]
        out += [f"  - agent {a}" for a in self.agents_removed]
        out += [f"  + role {r}" for r in self.roles_added]
        out += [f"  ~ role {r}" for r in self.roles_changed]
        out += [f"  - role {r}" for r in self.roles_removed]
        out += [f"  ~ {s}" for s in self.sections_changed]
        if self.items_outdated:
            out.append("  ~ compiled items (written by an older agent-auth; all are rewritten)")
        added = len(self.agents_added) + len(self.roles_added)
        changed = len(self.agents_changed) + len(self.roles_changed) + len(self.sections_changed)
        changed += int(self.items_outdated)
        removed = len(self.agents_removed) + len(self.roles_removed)
        out.append(f"{added} to add, {changed} to change, {removed} to remove.")
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "agents_added": self.agents_added,
            "agents_changed": sorted(self.agents_changed),
            "agents_removed": self.agents_removed,
            "roles_added": self.roles_added,
            "roles_changed": self.roles_changed,
            "roles_removed": self.roles_removed,
            "sections_changed": self.sections_changed,
            "items_outdated": self.items_outdated,
        }


def plan_changes(old: dict[str, Any] | None, new: dict[str, Any], stored_agents: list[str]) -> Plan:
    """`stored_agents` are the agent items actually in the table, so an agent left behind by an
    interrupted apply is still planned for removal."""
    old = old or {}
    old_agents: dict[str, Any] = old.get("agents", {})
    new_agents: dict[str, Any] = new.get("agents", {})
    old_roles: dict[str, Any] = old.get("roles", {})
    new_roles: dict[str, Any] = new.get("roles", {})
    plan = Plan()
    present = set(old_agents) | set(stored_agents)
    plan.agents_added = sorted(set(new_agents) - present)
    plan.agents_removed = sorted(present - set(new_agents))
    for name in sorted(set(new_agents) & present):
        before, after = old_agents.get(name, {}), new_agents[name]
        fields = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if fields:
            plan.agents_changed[name] = fields
    plan.roles_added = sorted(set(new_roles) - set(old_roles))
    plan.roles_removed = sorted(set(old_roles) - set(new_roles))
    plan.roles_changed = sorted(r for r in set(new_roles) & set(old_roles) if new_roles[r] != old_roles[r])
    plan.sections_changed = [s for s in OTHER_SECTIONS if old.get(s) != new.get(s) and (old or new.get(s))]
    return plan
