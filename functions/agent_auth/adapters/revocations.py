"""Revocations (RFC 7009) and the kill switch in DynamoDB, and the one read that checks them all.

A revoked access token is a record "jti#<id>", a revoked refresh family "family#<id>", each kept (TTL)
until the token it names would have expired anyway. A disabled agent is a flag on its own item, where
the token path already reads it (performance target 1: no extra read per token). Checking a token reads
everything that could have revoked it in one BatchGetItem: its jti and family records, the items of its
agent and of every agent in its `act` chain, and the JIT grants it draws on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_auth.adapters.dynamodb import AGENT_PREFIX, aws_call, from_item, numbers_to_int
from agent_auth.adapters.records_codec import grant_from_item
from agent_auth.errors import DependencyFailure
from agent_auth.oauth.tokens.validator import AccessTokenClaims, TokenStatus
from agent_auth.ports import Write
from agent_auth.records import JitGrant

JTI_PREFIX = "jti#"
FAMILY_PREFIX = "family#"
DISABLED = "disabled"
REVOKED_BEFORE = "tokens_revoked_before"
"""Runtime state on an agent item, like the lock: `apply` never writes either (adapters/dynamodb.py)."""


class RevocationTable:
    """The revocation records (schema.REVOCATIONS), as writes of a transaction with their audit record."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def revoke_token(self, token_id: str, client_id: str, expires_at: int, now: int) -> Write:
        return self._put(JTI_PREFIX + token_id, client_id, expires_at, now)

    def revoke_family(self, family_id: str, client_id: str, expires_at: int, now: int) -> Write:
        return self._put(FAMILY_PREFIX + family_id, client_id, expires_at, now)

    def _put(self, key: str, client_id: str, expires_at: int, now: int) -> Write:
        # Unconditional: revoking twice is revoking once (RFC 7009 §2.2 answers 200 either way).
        item = {
            "pk": {"S": key},
            "client_id": {"S": client_id},
            "revoked_at": {"N": str(now)},
            "expires_at": {"N": str(max(expires_at, now))},
        }
        return Write({"Put": {"TableName": self._table, "Item": item}})


class AgentSwitch:
    """The kill switch's writes on agent items (schema.AGENTS)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def disable(self, client_id: str, now: int) -> Write:
        """Disabled from now; every token issued up to this second stays revoked, even after enable."""
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": AGENT_PREFIX + client_id}},
                    "UpdateExpression": f"SET {DISABLED} = :true, {REVOKED_BEFORE} = :now",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
                }
            }
        )

    def enable(self, client_id: str) -> Write:
        """Serve the agent again; `tokens_revoked_before` stays (product.md: revoked tokens stay revoked)."""
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": AGENT_PREFIX + client_id}},
                    "UpdateExpression": f"REMOVE {DISABLED}",
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        )


class RevocationLookup:
    """The validator's RevocationCheck and introspection's TokenStatusReader: one BatchGetItem."""

    def __init__(self, client: Any, *, revocations: str, agents: str, grants: str) -> None:
        self._client = client
        self._revocations = revocations
        self._agents = agents
        self._grants = grants

    def is_revoked(self, claims: Mapping[str, Any], now: int) -> bool:
        return self.status(claims, now).revoked is not None

    def status(self, claims: Mapping[str, Any], now: int) -> TokenStatus:
        token = AccessTokenClaims(claims)
        # Its own agent, the chain's, and (exchanged tokens) the one whose token began the chain.
        agents = list(dict.fromkeys((token.client_id, *token.actors, *filter(None, [token.origin_client]))))
        token_keys = list(dict.fromkeys(JTI_PREFIX + t for t in (token.token_id, *token.ancestors)))
        revocation_keys = list(token_keys)
        if token.token_family is not None:
            revocation_keys.append(FAMILY_PREFIX + token.token_family)
        # BatchGetItem refuses a key asked twice: each list is without repeats.
        grant_keys = [
            {"pk": {"S": f"client#{token.client_id}"}, "sk": {"S": g}} for g in dict.fromkeys(token.grant_ids)
        ]
        items = self._batch_get(
            {
                self._revocations: [{"pk": {"S": k}} for k in revocation_keys],
                self._agents: [{"pk": {"S": AGENT_PREFIX + a}} for a in agents],
                self._grants: grant_keys,
            }
        )
        if any(items[self._revocations].get(k) for k in revocation_keys):
            token_revoked = any(items[self._revocations].get(k) for k in token_keys)
            reason = "token_revoked" if token_revoked else "family_revoked"
            return TokenStatus(reason)
        for name in agents:
            agent = items[self._agents].get(AGENT_PREFIX + name)
            if agent is None:
                return TokenStatus("agent_removed")
            if agent.get(DISABLED):
                return TokenStatus("agent_disabled")
            revoked_before = agent.get(REVOKED_BEFORE)
            if revoked_before is not None and token.issued_at <= int(revoked_before):
                return TokenStatus("revoked_by_disable")
        grants: list[JitGrant] = []
        for key in grant_keys:
            item = items[self._grants].get(f"{key['pk']['S']}|{key['sk']['S']}")
            if item is None:
                return TokenStatus("grant_gone")
            grant = grant_from_item(item)
            if grant.revoked:
                return TokenStatus("grant_revoked")
            grants.append(grant)
        return TokenStatus(None, tuple(grants))

    def _batch_get(self, keys: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        """Every item asked for, by table and key ("pk" or "pk|sk"); consistent reads, so a revocation
        is seen at once. Unprocessed keys are asked again; still unprocessed: DependencyFailure."""
        found: dict[str, dict[str, dict[str, Any]]] = {table: {} for table in keys}
        request = {t: {"Keys": k, "ConsistentRead": True} for t, k in keys.items() if k}
        for _ in range(3):
            if not request:
                return found
            with aws_call():
                result = self._client.batch_get_item(RequestItems=request)
            for table, items in result.get("Responses", {}).items():
                for raw in items:
                    item = numbers_to_int(from_item(raw))
                    key = item["pk"] if "sk" not in item else f"{item['pk']}|{item['sk']}"
                    found[table][key] = item
            request = result.get("UnprocessedKeys") or {}
        if request:
            raise DependencyFailure("unprocessed_keys")
        return found
