"""DynamoDB items <-> typed records (records.py). The only place that knows how a record is stored."""

from __future__ import annotations

from typing import Any

from agent_auth.records import AccessRequest, Agent, JitGrant, JitRule, to_plain


def agent_from_item(item: dict[str, Any]) -> Agent:
    return Agent(
        client_id=str(item["client_id"]),
        owner=str(item.get("owner") or ""),
        auth_method=str(item["auth_method"]),
        scopes=dict(item.get("scopes") or {}),
        audiences=dict(item.get("audiences") or {}),
        never=frozenset(item.get("never") or ()),
        jit=tuple(
            JitRule(
                scopes=tuple(rule["scopes"]),
                audience=str(rule["audience"]),
                approvers=rule.get("approvers"),
                auto=bool(rule.get("auto")),
                max_duration=int(rule["max_duration"]),
                single_use=bool(rule.get("single_use")),
            )
            for rule in item.get("jit") or ()
        ),
        descriptions=dict(item.get("descriptions") or {}),
        roles=tuple(item.get("roles") or ()),
        jwks=item.get("jwks"),
        jwks_uri=item.get("jwks_uri"),
        secret_hash=item.get("secret_hash"),
        secret_rotated_at=item.get("secret_rotated_at"),
        auth_locked_until=int(item["auth_locked_until"]) if item.get("auth_locked_until") else None,
    )


def request_from_item(item: dict[str, Any]) -> AccessRequest:
    return AccessRequest(
        request_id=str(item["request_id"]),
        client_id=str(item["client_id"]),
        owner=str(item["owner"]),
        scopes=tuple(item["scopes"]),
        audience=str(item["audience"]),
        audience_uri=str(item["audience_uri"]),
        reason=str(item["reason"]),
        duration=int(item["duration"]),
        single_use=bool(item.get("single_use")),
        approvers=item.get("approvers"),
        status=item["status"],
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        descriptions=dict(item.get("descriptions") or {}),
        digest=str(item.get("digest") or ""),
        decided_by=item.get("decided_by"),
        decided_at=int(item["decided_at"]) if item.get("decided_at") is not None else None,
        deny_reason=item.get("deny_reason"),
    )


def request_to_data(request: AccessRequest) -> dict[str, Any]:
    return to_plain(request)


def grant_from_item(item: dict[str, Any]) -> JitGrant:
    return JitGrant(
        grant_id=str(item["grant_id"]),
        client_id=str(item["client_id"]),
        scopes=tuple(item["scopes"]),
        audience=str(item["audience"]),
        audience_uri=str(item["audience_uri"]),
        starts_at=int(item["starts_at"]),
        ends_at=int(item["ends_at"]),
        request_id=str(item.get("request_id") or item["grant_id"]),
        single_use=bool(item.get("single_use")),
        approved_by=item.get("approved_by"),
        revoked=bool(item.get("revoked")),
        consumed=bool(item.get("consumed")),
    )


def grant_to_data(grant: JitGrant) -> dict[str, Any]:
    data = to_plain(grant)
    # Flags are stored only once set, so conditions can test attribute_not_exists.
    for flag in ("revoked", "consumed"):
        if not data[flag]:
            del data[flag]
    return data


DECOY_AGENT_ITEM: dict[str, Any] = {
    "client_id": "decoy",
    "owner": "decoy-owner@example.com",
    "auth_method": "client_secret_basic",
    "roles": ["decoy-reader"],
    "scopes": {"decoy.records.read": "decoy"},
    "audiences": {"decoy": "https://decoy.example.com"},
    "never": ["decoy.billing.read"],
    "jit": [
        {
            "scopes": ["decoy.records.read", "decoy.records.write"],
            "audience": "decoy",
            "approvers": "decoy-leads",
            "auto": False,
            "max_duration": 3600,
            "single_use": False,
        }
    ],
    "descriptions": {"decoy.records.read": "Read records", "decoy.records.write": "Change records"},
    "policy": (
        '{"auth":"client_secret_basic","delegation":null,"exchange":null,"jit":[{"approvers":"decoy-leads",'
        '"auto":false,"max_duration":3600,"role":"decoy-editor","scopes":null,"single_use":false}],'
        '"jwks":null,"jwks_uri":null,"never":["decoy.billing.read"],"owner":"decoy-owner@example.com",'
        '"roles":["decoy-reader"]}'
    ),
    "secret_hash": "0" * 64,
    "secret_rotated_at": "2000-01-01T00:00:00Z",
}
"""An agent item of the usual shape and size (a secret agent with a role and one just-in-time rule, like
the example policy's), stored on the throttle table's decoy and parsed when an unknown client fails, so
that its refusal moves and decodes as much data as a known agent's (performance target 8)."""
