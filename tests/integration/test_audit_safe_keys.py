"""What an unauthenticated client sends never reaches the audit table as sent, nor any item's key.

Through the token handler (API Gateway events, moto): a client that swaps its id and secret, in the
form (client_secret_post) and in HTTP Basic (RFC 6749 §2.3.1), and requested values that look like
secrets. Every item of the audit table is scanned, every attribute at every depth.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from agent_auth import schema
from agent_auth.adapters.dynamodb import from_item
from agent_auth.handlers import token
from tests.conftest import Deployment
from tests.support import basic, form, load_event, with_body

UNATTRIBUTED = "unattributed"
"""The one partition of records whose client is not proven (adapters/audit_table.py)."""


def call(event: dict[str, Any]) -> int:
    return int(token.lambda_handler(event, None)["statusCode"])


def post(body: str, **headers: str) -> dict[str, Any]:
    return with_body(load_event("token_client_secret_post.json"), body, **headers)


def strings(value: Any) -> list[str]:
    """Every string in an item: attribute names, values, list elements and map keys."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list | tuple | set):
        return [s for v in value for s in strings(v)]
    return [str(value)]


def raw_items(deployment: Deployment) -> list[dict[str, Any]]:
    return [from_item(i) for i in deployment.scan(deployment.settings.audit_table)]


def key_values(item: dict[str, Any]) -> list[str]:
    """The item's table key and every index key it carries."""
    return [str(item[name]) for name in schema.AUDIT.key_attributes() if name in item]


def assert_nowhere(deployment: Deployment, secret: str) -> None:
    for item in raw_items(deployment):
        assert all(secret not in s for s in strings(item)), item
        assert all(secret not in k for k in key_values(item)), item


def newest_item(deployment: Deployment) -> dict[str, Any]:
    return max(raw_items(deployment), key=lambda i: str(i["sk"]))


SWAPS = {
    "client_secret_post": lambda secret, name: post(
        form(grant_type="client_credentials", client_id=secret, client_secret=name)
    ),
    "client_secret_basic": lambda secret, name: post(
        form(grant_type="client_credentials"), Authorization=basic(secret, name)
    ),
}


@pytest.mark.parametrize("method", sorted(SWAPS))
def test_a_swapped_id_and_secret_leaves_no_secret_and_no_key_on_it(
    deployment: Deployment, method: str
) -> None:
    # Given an agent's real secret, sent as the client_id (and the agent's name as the secret)
    agent = "billing-agent" if method == "client_secret_post" else "support-bot"
    secret = deployment.secrets[agent]

    # When the token endpoint refuses it
    assert call(SWAPS[method](secret, agent)) == 401

    # Then the secret is in no attribute of any audit item, and in no key
    assert_nowhere(deployment, secret)
    # And the refusal is keyed on the fixed partition, not on the claimed id or its fingerprint
    record = newest_item(deployment)
    assert record["decision"] == "deny" and str(record["client_id"]).startswith("unverified:")
    assert record["pk"] == UNATTRIBUTED
    assert "unverified" not in record["sk"] and record["client_id"] not in " ".join(key_values(record))


def test_an_unknown_client_is_keyed_on_the_fixed_partition(deployment: Deployment) -> None:
    # Given a client_id that names no agent
    claimed = "nobody-" + secrets.token_hex(8)
    assert call(post(form(grant_type="client_credentials", client_id=claimed, client_secret="x" * 43))) == 401

    # Then nothing of it is stored or keyed as sent
    assert_nowhere(deployment, claimed)
    assert newest_item(deployment)["pk"] == UNATTRIBUTED


def test_a_known_agent_is_keyed_on_its_name(deployment: Deployment) -> None:
    # Given a real agent with a wrong secret: its name is not input, it names an agent that exists
    body = form(grant_type="client_credentials", client_id="billing-agent", client_secret="wrong")
    assert call(post(body)) == 401

    # Then the record is in that agent's partition (agent-auth audit --agent finds it)
    record = newest_item(deployment)
    assert (record["pk"], record["client_id"]) == ("agent#billing-agent", "billing-agent")


def secret_looking() -> str:
    return "sk_live_" + secrets.token_urlsafe(24)


@pytest.mark.parametrize("proven", [False, True], ids=["wrong secret", "proven client"])
def test_an_unknown_scope_is_not_stored_as_sent(deployment: Deployment, proven: bool) -> None:
    # Given a scope nobody declared, that looks like a secret
    scope = secret_looking()
    password = deployment.secrets["billing-agent"] if proven else "wrong"
    body = form(
        grant_type="client_credentials", client_id="billing-agent", client_secret=password, scope=scope
    )

    # When it is refused
    assert call(post(body)) in (400, 401)

    # Then the scope is recorded only as a fingerprint
    assert_nowhere(deployment, scope)
    assert str(newest_item(deployment)["scope_requested"]).startswith("unverified:")


@pytest.mark.parametrize("proven", [False, True], ids=["wrong secret", "proven client"])
def test_an_unknown_resource_is_not_stored_as_sent(deployment: Deployment, proven: bool) -> None:
    # Given a resource nobody declared, carrying a secret-looking value
    value = secret_looking()
    resource = f"https://crm.example.com/?api_key={value}"
    password = deployment.secrets["billing-agent"] if proven else "wrong"
    body = form(
        grant_type="client_credentials", client_id="billing-agent", client_secret=password, resource=resource
    )

    # When it is refused
    assert call(post(body)) in (400, 401)

    # Then neither the resource nor its secret-looking part is stored
    assert_nowhere(deployment, value)
    assert str(newest_item(deployment)["audience"]).startswith("unverified:")


def test_no_audit_item_holds_what_a_swapped_client_sent_in_any_dump(deployment: Deployment) -> None:
    # Given both swaps in a row, and the items as JSON (what a backup or an export would hold)
    for method, build in SWAPS.items():
        agent = "billing-agent" if method == "client_secret_post" else "support-bot"
        assert call(build(deployment.secrets[agent], agent)) == 401

    # Then neither secret appears in any form
    dumped = json.dumps(raw_items(deployment), default=str)
    assert deployment.secrets["billing-agent"] not in dumped
    assert deployment.secrets["support-bot"] not in dumped
