"""Just-in-time elevation: an agent asks (POST /access-requests), policy decides, a human may approve.

The request names scopes, an optional resource, a reason and an optional duration. `never` and the
agent's `jit` rules decide: never requestable (403 access_denied), approved at once (`auto: true`), or
pending until an approver decides from the emailed link. The agent then polls the token endpoint with
the access-request grant (access_request_grant.py), CIBA-style.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

from agent_auth.errors import AccessDenied, InvalidRequest, InvalidTarget
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.client_endpoint import Outcome
from agent_auth.oauth.scopes import check_resource, parse_scope
from agent_auth.web.forms import Form

PENDING_SECONDS = 3600
"""How long a request waits for a decision (and how long its approval links live)."""
POLL_INTERVAL = 5
MAX_REASON = 500
MIN_DURATION = 60


class RequestStore(Protocol):
    def create(self, request: dict[str, Any], grant: dict[str, Any] | None) -> None:
        """Write a new request (and, when auto-approved, its grant) in one transaction."""
        ...


@dataclass(frozen=True)
class Rule:
    scopes: tuple[str, ...]
    audience: str
    approvers: str | None
    auto: bool
    max_duration: int
    single_use: bool


def new_request_id() -> str:
    return "req_" + secrets.token_urlsafe(16)


def request_digest(request: dict[str, Any]) -> str:
    """What the approver is shown and signs off on; a link is bound to it."""
    fields = {k: request[k] for k in ("request_id", "client_id", "scopes", "audience", "duration", "reason")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def clean_reason(raw: str | None) -> str:
    """Required, bounded, and free of control characters (header injection, terminal tricks)."""
    if raw is None:
        raise InvalidRequest("reason is required", reason="missing_reason")
    if len(raw) > MAX_REASON:
        raise InvalidRequest("reason is too long", reason="reason_too_long")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in raw):
        raise InvalidRequest("reason contains control characters", reason="reason_control_characters")
    reason = raw.strip()
    if not reason:
        raise InvalidRequest("reason is required", reason="missing_reason")
    return reason


class AccessRequestOperation:
    action = "access.request"

    def __init__(self, store: RequestStore) -> None:
        self._store = store

    def validate(self, form: Form) -> None:
        if form.get("scope") is None:
            raise InvalidRequest("scope is required", reason="missing_scope")
        clean_reason(form.get("reason"))

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        agent = client.item
        scopes = parse_scope(form.get("scope")) or []
        if set(scopes) & set(agent.get("never") or ()):
            raise AccessDenied("The requested scope can never be granted to this client", reason="never")
        resources = form.get_all("resource")
        if len(resources) > 1:
            raise InvalidTarget("A token names exactly one resource", reason="several_resources")
        uri = check_resource(resources[0]) if resources else None
        rule = self._rule_for(agent, scopes, uri)
        duration = self._duration(form.get("duration"), rule)
        reason = clean_reason(form.get("reason"))
        request_id = new_request_id()
        status = "approved" if rule.auto else "pending"
        request: dict[str, Any] = {
            "request_id": request_id,
            "client_id": client.client_id,
            "owner": agent["owner"],
            "scopes": sorted(scopes),
            "audience": rule.audience,
            "audience_uri": agent["audiences"][rule.audience],
            "descriptions": {s: agent.get("descriptions", {}).get(s, "") for s in scopes},
            "reason": reason,
            "duration": duration,
            "single_use": rule.single_use,
            "approvers": rule.approvers,
            "status": status,
            "created_at": now,
            "expires_at": now + PENDING_SECONDS,
        }
        request["digest"] = request_digest(request)
        grant = None
        if rule.auto:
            request.update(decided_by="auto", decided_at=now)
            grant = grant_for(request, now)
        self._store.create(request, grant)
        return Outcome(
            response={
                "request_id": request_id,
                "status": status,
                "expires_in": PENDING_SECONDS,
                "interval": POLL_INTERVAL,
            },
            status=200 if rule.auto else 202,
            scope=" ".join(sorted(scopes)),
            audience=request["audience_uri"],
            details={"access_request": request_id, "status": status, "duration": duration},
        )

    @staticmethod
    def _rule_for(agent: dict[str, Any], scopes: list[str], uri: str | None) -> Rule:
        audiences: dict[str, str] = agent.get("audiences") or {}
        for raw in agent.get("jit") or ():
            rule = Rule(
                tuple(raw["scopes"]),
                raw["audience"],
                raw.get("approvers"),
                bool(raw.get("auto")),
                int(raw["max_duration"]),
                bool(raw.get("single_use")),
            )
            if set(scopes) <= set(rule.scopes) and uri in (None, audiences.get(rule.audience)):
                return rule
        if uri is not None and uri not in audiences.values():
            raise InvalidTarget("The resource is not allowed for this client", reason="resource_not_allowed")
        raise AccessDenied("No rule allows this client to request this scope", reason="no_jit_rule")

    @staticmethod
    def _duration(raw: str | None, rule: Rule) -> int:
        if raw is None:
            return rule.max_duration
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise InvalidRequest("duration must be a number of seconds", reason="bad_duration")
        seconds = int(raw)
        if seconds < MIN_DURATION:
            raise InvalidRequest("duration must be at least 60 seconds", reason="duration_too_short")
        if seconds > rule.max_duration:
            raise InvalidRequest("duration exceeds what the policy allows", reason="duration_beyond_max")
        return seconds


def grant_for(request: dict[str, Any], decided_at: int) -> dict[str, Any]:
    """The grant an approval creates: the request's scopes for its duration, counted from the decision."""
    return {
        "grant_id": request["request_id"],
        "client_id": request["client_id"],
        "scopes": request["scopes"],
        "audience": request["audience"],
        "audience_uri": request["audience_uri"],
        "starts_at": decided_at,
        "ends_at": decided_at + int(request["duration"]),
        "single_use": bool(request.get("single_use")),
        "approved_by": request.get("decided_by"),
        "request_id": request["request_id"],
    }
