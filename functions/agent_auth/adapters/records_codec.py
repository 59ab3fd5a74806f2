"""DynamoDB items <-> typed records (records.py). The only place that knows how a record is stored."""

from __future__ import annotations

from typing import Any

from agent_auth.records import (
    AccessRequest,
    Agent,
    AuthorizationCode,
    Consent,
    Delegation,
    ExchangeAudience,
    ExchangeRules,
    JitGrant,
    JitRule,
    RefreshFamily,
    SignIn,
    TrustedIssuer,
    UserDirectory,
    UserSession,
    to_plain,
)


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
        previous_secret_hash=item.get("previous_secret_hash"),
        previous_secret_expires_at=(
            int(item["previous_secret_expires_at"]) if item.get("previous_secret_expires_at") else None
        ),
        delegation=delegation_from_item(item.get("delegation")),
        exchange=exchange_from_item(item.get("exchange")),
        auth_locked_until=int(item["auth_locked_until"]) if item.get("auth_locked_until") else None,
        serves=dict(item.get("serves") or {}),
        disabled=bool(item.get("disabled")),
        tokens_revoked_before=(
            int(item["tokens_revoked_before"]) if item.get("tokens_revoked_before") is not None else None
        ),
    )


def delegation_from_item(data: dict[str, Any] | None) -> Delegation | None:
    """The agent item's `delegation` map (policy/compiler._delegation_item); absent: no delegation."""
    if not data:
        return None
    consent = data.get("consent") or "remember"
    return Delegation(
        redirect_uris=tuple(data.get("redirect_uris") or ()),
        scopes=tuple(data.get("scopes") or ()),
        offline_access=bool(data.get("offline_access", True)),
        # Anything else than "remember" asks every time: an unreadable value never skips consent.
        consent="remember" if consent == "remember" else "every_time",
        scope_audiences=dict(data.get("scope_audiences") or {}),
    )


def exchange_from_item(data: dict[str, Any] | None) -> ExchangeRules | None:
    """The agent item's `exchange` map (policy/compiler._exchange_item); absent: no exchange."""
    if not data:
        return None
    return ExchangeRules(
        audiences={
            str(name): ExchangeAudience(uri=str(a["uri"]), scopes=frozenset(a.get("scopes") or ()))
            for name, a in (data.get("audiences") or {}).items()
        },
        from_agents=frozenset(data.get("from") or ()),
        max_chain=int(data.get("max_chain") or 1),
        trusted_issuers=tuple(
            TrustedIssuer(
                issuer=str(t["issuer"]),
                jwks_uri=str(t["jwks_uri"]),
                audience=str(t["audience"]),
                user_claim=str(t["user_claim"]),
                algorithms=tuple(t.get("algorithms") or ()),
            )
            for t in data.get("trusted_issuers") or ()
        ),
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


# --- Delegated access -------------------------------------------------------------------------------
# Flags (redeemed, revoked) are stored only once set, so conditions can test attribute_not_exists.


def _without_false(data: dict[str, Any], *flags: str) -> dict[str, Any]:
    for flag in flags:
        if not data.get(flag):
            data.pop(flag, None)
    return data


def users_to_data(users: dict[str, dict[str, list[str]]]) -> dict[str, Any]:
    """The compiled `users` directory (policy/compiler._users_directory) as the attributes of one item."""
    return {
        "by_email": {k: list(v) for k, v in users.get("by_email", {}).items()},
        "by_group": {k: list(v) for k, v in users.get("by_group", {}).items()},
    }


def users_from_item(item: dict[str, Any] | None) -> UserDirectory:
    if not item:
        return UserDirectory()
    return UserDirectory(
        by_email={str(k): frozenset(v) for k, v in (item.get("by_email") or {}).items()},
        by_group={str(k): frozenset(v) for k, v in (item.get("by_group") or {}).items()},
    )


def sign_in_to_data(sign_in: SignIn) -> dict[str, Any]:
    return to_plain(sign_in)


def sign_in_from_item(item: dict[str, Any]) -> SignIn:
    return SignIn(
        sign_in_id=str(item["sign_in_id"]),
        client_id=str(item["client_id"]),
        redirect_uri=str(item["redirect_uri"]),
        scopes=tuple(item["scopes"]),
        audience=str(item["audience"]),
        code_challenge=str(item["code_challenge"]),
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        state=item.get("state"),
        nonce=item.get("nonce"),
        prompt=item.get("prompt"),
        upstream_nonce=str(item.get("upstream_nonce") or ""),
        upstream_verifier=str(item.get("upstream_verifier") or ""),
        user=item.get("user"),
        groups=tuple(item.get("groups") or ()),
        return_to=item.get("return_to"),
        browser_hash=str(item.get("browser_hash") or ""),
    )


def session_to_data(session: UserSession) -> dict[str, Any]:
    return to_plain(session)


def session_from_item(item: dict[str, Any]) -> UserSession:
    return UserSession(
        session_hash=str(item["session_hash"]),
        user=str(item["user"]),
        groups=tuple(item.get("groups") or ()),
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
    )


def code_to_data(code: AuthorizationCode) -> dict[str, Any]:
    return _without_false(to_plain(code), "redeemed")


def code_from_item(item: dict[str, Any]) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=str(item["code_hash"]),
        client_id=str(item["client_id"]),
        redirect_uri=str(item["redirect_uri"]),
        code_challenge=str(item["code_challenge"]),
        audience=str(item["audience"]),
        scopes=tuple(item["scopes"]),
        user=str(item["user"]),
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        family_id=str(item["family_id"]),
        nonce=item.get("nonce"),
        groups=tuple(item.get("groups") or ()),
        redeemed=bool(item.get("redeemed")),
    )


def family_to_data(family: RefreshFamily) -> dict[str, Any]:
    return _without_false(to_plain(family), "revoked")


def family_from_item(item: dict[str, Any]) -> RefreshFamily:
    return RefreshFamily(
        family_id=str(item["family_id"]),
        client_id=str(item["client_id"]),
        user=str(item["user"]),
        audience=str(item["audience"]),
        scopes=tuple(item["scopes"]),
        current_hash=str(item["current_hash"]),
        generation=int(item["generation"]),
        created_at=int(item["created_at"]),
        expires_at=int(item["expires_at"]),
        groups=tuple(item.get("groups") or ()),
        revoked=bool(item.get("revoked")),
    )


def consent_to_data(consent: Consent) -> dict[str, Any]:
    return _without_false(to_plain(consent), "revoked")


def consent_from_item(item: dict[str, Any]) -> Consent:
    return Consent(
        user=str(item["user"]),
        client_id=str(item["client_id"]),
        audience=str(item["audience"]),
        scopes=tuple(item["scopes"]),
        granted_at=int(item["granted_at"]),
        revoked=bool(item.get("revoked")),
        withdrawn_at=int(item["withdrawn_at"]) if item.get("withdrawn_at") is not None else None,
    )


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
