"""Access requests and the JIT grants approvals create, in DynamoDB."""

from __future__ import annotations

from typing import Any

from agent_auth.adapters.dynamodb import aws_call, conditional_write, from_item, numbers_to_int, to_item
from agent_auth.adapters.records_codec import grant_from_item, grant_to_data, request_from_item
from agent_auth.ports import Write
from agent_auth.records import AccessRequest, JitGrant, to_plain

PURGE_AFTER = 7 * 86400


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return numbers_to_int(from_item(item))  # type: ignore[no-any-return]


def _grant_key(client_id: str, grant_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"client#{client_id}"}, "sk": {"S": grant_id}}


class RequestTable:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, request: AccessRequest) -> Write:
        """A new request; the TTL purges it a week after its own expiry, which code checks."""
        item = {"pk": request.request_id, "purge_at": request.expires_at + PURGE_AFTER, **to_plain(request)}
        return Write(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )

    def get_request(self, request_id: str) -> AccessRequest | None:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": request_id}}, ConsistentRead=True
            )
        item = result.get("Item")
        return request_from_item(_plain(item)) if item else None

    def note_poll(self, request_id: str, now: int, interval: int) -> bool:
        return conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": request_id}},
                UpdateExpression="SET last_polled_at = :now",
                ConditionExpression="attribute_not_exists(last_polled_at) OR last_polled_at <= :due",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":due": {"N": str(now - interval)}},
            )
        )

    def decision(self, decided: AccessRequest, now: int) -> Write:
        """Move a pending, unexpired request to its decided status: the write's condition makes exactly
        one decision win (the loser's transaction is cancelled)."""
        values: dict[str, Any] = {
            ":status": {"S": decided.status},
            ":by": {"S": decided.decided_by or ""},
            ":now": {"N": str(now)},
            ":pending": {"S": "pending"},
        }
        expression = "SET #s = :status, decided_by = :by, decided_at = :now"
        if decided.deny_reason:
            expression += ", deny_reason = :why"
            values[":why"] = {"S": decided.deny_reason}
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": decided.request_id}},
                    "UpdateExpression": expression,
                    "ConditionExpression": "#s = :pending AND expires_at > :now",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": values,
                }
            }
        )

    def list_requests(self, limit: int = 200) -> list[AccessRequest]:
        items: list[AccessRequest] = []
        with aws_call():
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._table, ConsistentRead=True
            ):
                items += [request_from_item(_plain(i)) for i in page["Items"]]
        return sorted(items, key=lambda r: r.created_at, reverse=True)[:limit]


class GrantTable:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, grant: JitGrant) -> Write:
        item = {"pk": f"client#{grant.client_id}", "sk": grant.grant_id, **grant_to_data(grant)}
        return Write(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )

    def grants_of(self, client_id: str) -> list[JitGrant]:
        with aws_call():
            result = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"client#{client_id}"}},
                ConsistentRead=True,
            )
        return [grant_from_item(_plain(i)) for i in result["Items"]]

    def list_grants(self) -> list[JitGrant]:
        """Every grant the table still holds (the TTL removes ended ones days later), for operators:
        a scan, never on a token's path."""
        grants: list[JitGrant] = []
        with aws_call():
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._table, ConsistentRead=True
            ):
                grants += [grant_from_item(_plain(i)) for i in page["Items"]]
        return grants

    def get_grant(self, client_id: str, grant_id: str) -> JitGrant | None:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key=_grant_key(client_id, grant_id), ConsistentRead=True
            )
        item = result.get("Item")
        return grant_from_item(_plain(item)) if item else None

    def consume(self, client_id: str, grant_id: str, now: int) -> bool:
        return conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_grant_key(client_id, grant_id),
                UpdateExpression="SET #c = :true, consumed_at = :now",
                ConditionExpression=("attribute_exists(pk) AND attribute_not_exists(#c) AND ends_at > :now"),
                ExpressionAttributeNames={"#c": "consumed"},  # a DynamoDB reserved word
                ExpressionAttributeValues={":true": {"BOOL": True}, ":now": {"N": str(now)}},
            )
        )

    def revocation(self, client_id: str, grant_id: str, now: int) -> Write:
        """End a grant at once; the transaction fails when there is no such grant."""
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _grant_key(client_id, grant_id),
                    "UpdateExpression": "SET revoked = :true, revoked_at = :now",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
                }
            }
        )
