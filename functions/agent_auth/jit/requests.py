"""Just-in-time elevation: an agent asks (POST /access-requests), policy decides, a human may approve.

The request names scopes, an optional resource, a reason and an optional duration. `never` and the
agent's `jit` rules decide: never requestable (403 access_denied), approved at once (`auto: true`), or
pending until an approver decides from the emailed link. The agent then polls the token endpoint with
the access-request grant type (jit/polling.py), CIBA-style.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import replace
from typing import Protocol

from agent_auth.errors import AccessDenied, InvalidRequest, InvalidTarget, TemporarilyUnavailable
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.operation import ClientAuthentication, Outcome
from agent_auth.oauth.params import Form
from agent_auth.oauth.scopes import check_resource, parse_scope
from agent_auth.ports import Transaction, Write
from agent_auth.records import AccessRequest, Agent, JitGrant, JitRule

PENDING_SECONDS = 3600
"""How long a request waits for a decision (and how long its approval links live)."""
POLL_INTERVAL = 5
MAX_REASON = 500
MIN_DURATION = 60


class RequestWrites(Protocol):
    def put(self, request: AccessRequest) -> Write: ...


class GrantWrites(Protocol):
    def put(self, grant: JitGrant) -> Write: ...


def new_request_id() -> str:
    return "req_" + secrets.token_urlsafe(16)


def request_digest(request: AccessRequest) -> str:
    """What the approver is shown and signs off on; a link is bound to it."""
    fields = {
        "request_id": request.request_id,
        "client_id": request.client_id,
        "scopes": list(request.scopes),
        "audience": request.audience,
        "duration": request.duration,
        "reason": request.reason,
    }
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

    def __init__(self, *, requests: RequestWrites, grants: GrantWrites, transaction: Transaction) -> None:
        self._requests = requests
        self._grants = grants
        self._transaction = transaction

    def validate(self, form: Form) -> None:
        if form.get("scope") is None:
            raise InvalidRequest("scope is required", reason="missing_scope")
        clean_reason(form.get("reason"))

    def client_authentication(self, form: Form) -> ClientAuthentication:
        return ClientAuthentication.REQUIRED

    def perform(self, client: AuthenticatedClient, form: Form, now: int) -> Outcome:
        agent = client.agent
        scopes = parse_scope(form.get("scope")) or []
        if set(scopes) & agent.never:
            raise AccessDenied("The requested scope can never be granted to this client", reason="never")
        resources = form.get_all("resource")
        if len(resources) > 1:
            raise InvalidTarget("A token names exactly one resource", reason="several_resources")
        uri = check_resource(resources[0]) if resources else None
        rule = rule_for(agent, scopes, uri)
        duration = requested_duration(form.get("duration"), rule)
        request = AccessRequest(
            request_id=new_request_id(),
            client_id=agent.client_id,
            owner=agent.owner,
            scopes=tuple(sorted(scopes)),
            audience=rule.audience,
            audience_uri=agent.audiences[rule.audience],
            descriptions={s: agent.descriptions.get(s, "") for s in scopes},
            reason=clean_reason(form.get("reason")),
            duration=duration,
            single_use=rule.single_use,
            approvers=rule.approvers,
            status="pending",
            created_at=now,
            expires_at=now + PENDING_SECONDS,
        )
        request = replace(request, digest=request_digest(request))
        writes = []
        if rule.auto:
            request = request.decided("approved", "auto", now)
            writes.append(self._grants.put(grant_for(request, now)))
        if not self._transaction.commit([self._requests.put(request), *writes]):
            # Request ids are 128 random bits: a collision means something is badly wrong. Refuse.
            raise TemporarilyUnavailable("Service temporarily unavailable", reason="request_id_collision")
        return Outcome(
            response={
                "request_id": request.request_id,
                "status": request.status,
                "expires_in": PENDING_SECONDS,
                "interval": POLL_INTERVAL,
            },
            status=200 if rule.auto else 202,
            scope=" ".join(request.scopes),
            audience=request.audience_uri,
            details={"access_request": request.request_id, "status": request.status, "duration": duration},
        )


def rule_for(agent: Agent, scopes: list[str], uri: str | None) -> JitRule:
    """The first rule whose scopes cover the request, for the named audience if there is one."""
    for rule in agent.jit:
        if set(scopes) <= set(rule.scopes) and uri in (None, agent.audiences.get(rule.audience)):
            return rule
    if uri is not None and uri not in agent.audiences.values():
        raise InvalidTarget("The resource is not allowed for this client", reason="resource_not_allowed")
    raise AccessDenied("No rule allows this client to request this scope", reason="no_jit_rule")


def requested_duration(raw: str | None, rule: JitRule) -> int:
    """Seconds, at least a minute, at most the rule's max_duration; the maximum when not given."""
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


def grant_for(request: AccessRequest, decided_at: int) -> JitGrant:
    """The JIT grant an approval creates: the request's scopes for its duration, from the decision."""
    return JitGrant(
        grant_id=request.request_id,
        client_id=request.client_id,
        scopes=request.scopes,
        audience=request.audience,
        audience_uri=request.audience_uri,
        starts_at=decided_at,
        ends_at=decided_at + request.duration,
        single_use=request.single_use,
        approved_by=request.decided_by,
        request_id=request.request_id,
    )
