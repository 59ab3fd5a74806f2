"""Driving introspection, revocation and the kill switch through the handlers, against moto."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agent_auth.adapters.delegation_tables import RefreshTable
from agent_auth.handlers import lifecycle, token
from agent_auth.oauth import jose
from agent_auth.oauth.tokens import opaque
from agent_auth.operations import apply_policy
from agent_auth.policy.compiler import load_policy
from agent_auth.records import Consent, RefreshFamily
from tests.conftest import Deployment
from tests.support import basic, form, load_event, policy_document, with_body, write_policy

CRM = "https://crm.example.com"
BILLING = "https://billing.example.com"


def lifecycle_policy(d: Deployment, tmp_path: Path, changes: dict[str, Any] | None = None) -> None:
    """The test policy, with billing-agent as the CRM's resource server and support-bot acting for
    users too (a confidential agent with refresh tokens), applied over the deployment's. `changes`
    sets further keys, by dotted path ("agents.support-bot.owner")."""
    document = policy_document(d.keys)
    document["audiences"]["crm"]["resource_servers"] = ["billing-agent"]
    document["agents"]["support-bot"]["delegation"] = {
        "redirect_uris": ["http://127.0.0.1:8765/callback"],
        "scopes": ["crm.contacts.read"],
    }
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        parent = document
        for key in parents:
            parent = parent[key]
        parent[last] = value
    apply_policy(d.target, load_policy(str(write_policy(tmp_path / "lifecycle.yaml", document))))


def call(path: str, body: str, **headers: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    event = with_body(load_event(f"{path}.json"), body, **headers)
    result = lifecycle.lambda_handler(event, None)
    return int(result["statusCode"]), json.loads(result["body"] or "null"), dict(result["headers"])


def as_agent(d: Deployment, agent: str) -> dict[str, str]:
    """The credentials of a secret agent: support-bot uses Basic, billing-agent the body."""
    if agent == "billing-agent":
        return {"client_id": agent, "client_secret": d.secrets[agent]}
    return {}


def _headers(d: Deployment, agent: str) -> dict[str, Any]:
    if agent == "billing-agent":
        return {"Authorization": None}
    return {"Authorization": basic(agent, d.secrets[agent])}


def introspect(d: Deployment, token_value: str, agent: str = "support-bot") -> tuple[int, dict[str, Any]]:
    status, body, _ = call("introspect", form(token=token_value, **as_agent(d, agent)), **_headers(d, agent))
    return status, body


def revoke(d: Deployment, token_value: str, agent: str = "support-bot", **fields: str) -> tuple[int, Any]:
    status, body, _ = call(
        "revoke", form(token=token_value, **as_agent(d, agent), **fields), **_headers(d, agent)
    )
    return status, body


def token_request(d: Deployment, agent: str = "support-bot", **fields: str) -> tuple[int, dict[str, Any]]:
    fields = {"grant_type": "client_credentials", **fields}
    event = with_body(
        load_event("token_client_secret_post.json"),
        form(**fields, **as_agent(d, agent)),
        **_headers(d, agent),
    )
    result = token.lambda_handler(event, None)
    return int(result["statusCode"]), json.loads(result["body"])


def access_token(d: Deployment, agent: str = "support-bot", **fields: str) -> str:
    status, body = token_request(d, agent, **fields)
    assert status == 200, body
    return str(body["access_token"])


def claims_of(token_value: str) -> dict[str, Any]:
    return json.loads(jose.b64url_decode(token_value.split(".")[1]))  # type: ignore[no-any-return]


def delegated(d: Deployment, agent: str = "support-bot", user: str = "alice@example.com") -> str:
    """A refresh family as the code grant leaves it (and the consent it rests on); the refresh token."""
    now = int(time.time())
    scopes = ("crm.contacts.read", "offline_access")
    family_id = opaque.new_family_id()
    refresh_token = opaque.new_refresh_token(family_id)
    family = RefreshFamily(
        family_id=family_id,
        client_id=agent,
        user=user,
        audience=CRM,
        scopes=scopes,
        current_hash=opaque.digest(refresh_token),
        generation=1,
        created_at=now - 10,
        expires_at=now + 86400,
    )
    refresh = RefreshTable(d.clients.dynamodb, d.settings.refresh_table)
    consent = Consent(user, agent, CRM, scopes, now - 10)
    assert d.target.transaction.commit([d.target.consents.put_consent(consent), refresh.put_family(family)])
    return refresh_token


def refresh(d: Deployment, refresh_token: str, agent: str = "support-bot") -> tuple[int, dict[str, Any]]:
    return token_request(d, agent, grant_type="refresh_token", refresh_token=refresh_token)
