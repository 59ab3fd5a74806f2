"""The failure counters of oauth/throttle.py on the throttle table (schema.THROTTLE), written only on failure.

One item per source address and window ("source#<address>#<window end>") and per known agent and window
("agent#<client_id>#<window end>"), each one UpdateItem ADD that returns the new count; the key names the
window, so an old window's item is never read again and TTL only cleans up.

An unknown client's failure updates the one fixed decoy ("decoy#client") instead of an agent counter. It
carries the attributes of an agent item of the usual shape (records_codec.DECOY_AGENT_ITEM), returned and
decoded on every such failure: the bytes and the work a known agent's read costs, which an unknown
client's read, finding nothing, does not (performance target 8: both refusals cost the same). Flat, like
an agent item: the counter's two attributes and the key stand for the known path's counter response.
"""

from __future__ import annotations

import hashlib
from typing import Any

from agent_auth.adapters.dynamodb import AgentTable, aws_call, from_item, numbers_to_int, to_item
from agent_auth.adapters.records_codec import DECOY_AGENT_ITEM, agent_from_item
from agent_auth.oauth.throttle import FailureCounts

DECOY_KEY = "decoy#client"
_MAX_ADDRESS = 64


def _address(source: str) -> str:
    """API Gateway's sourceIp; anything longer or stranger than an address is keyed by its hash."""
    if source and len(source) <= _MAX_ADDRESS and all(c.isalnum() or c in ".:-" for c in source):
        return source
    return "sha256:" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


class ThrottleTable:
    """The FailureCounters port. Locks go on the agent item, which the token path reads anyway."""

    def __init__(self, client: Any, table: str, agents: AgentTable) -> None:
        self._client = client
        self._table = table
        self._agents = agents
        self._decoy = to_item(DECOY_AGENT_ITEM)

    def count_source_failure(self, source: str, window_end: int) -> int:
        return self._add(f"source#{_address(source)}#{window_end}", window_end)

    def source_count(self, source: str, window_end: int) -> int:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"source#{_address(source)}#{window_end}"}},
                ConsistentRead=True,
            )
        item = result.get("Item")
        return int(item["failures"]["N"]) if item else 0

    def count_failure(self, *, source: str, client_id: str | None, window_end: int) -> FailureCounts:
        counted = self.count_source_failure(source, window_end)
        if client_id is None:
            return FailureCounts(counted, self._count_decoy(window_end))
        return FailureCounts(counted, self._add(f"agent#{client_id}#{window_end}", window_end))

    def lock(self, client_id: str | None, until: int) -> None:
        if client_id is not None:
            self._agents.lock(client_id, until)
            return
        with aws_call():
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": DECOY_KEY}},
                UpdateExpression="SET locked_until = :until",
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )

    def _add(self, key: str, window_end: int) -> int:
        with aws_call():
            result = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key}},
                UpdateExpression="ADD failures :one SET expires_at = :end",
                ExpressionAttributeValues={":one": {"N": "1"}, ":end": {"N": str(window_end)}},
                ReturnValues="UPDATED_NEW",
            )
        return int(result["Attributes"]["failures"]["N"])

    def _count_decoy(self, window_end: int) -> int:
        with aws_call():
            # The same expression as an agent counter's, but `window_end` is no TTL attribute: the decoy
            # stays. ALL_NEW brings back the agent-shaped item, decoded below as an agent's read is.
            result = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": DECOY_KEY}},
                UpdateExpression="ADD failures :one SET window_end = :end",
                ExpressionAttributeValues={":one": {"N": "1"}, ":end": {"N": str(window_end)}},
                ReturnValues="ALL_NEW",
            )
        item = numbers_to_int(from_item(result["Attributes"]))
        if "client_id" in item:
            agent_from_item(item)
        else:  # the first unknown client ever: give the decoy its agent's attributes, once
            names = {f"#a{i}": name for i, name in enumerate(self._decoy)}
            with aws_call():
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": DECOY_KEY}},
                    UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(names))),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={f":a{i}": v for i, v in enumerate(self._decoy.values())},
                )
        return int(item["failures"])
