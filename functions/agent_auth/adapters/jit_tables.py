"""Access requests and the grants approvals create, in DynamoDB."""

from __future__ import annotations

from typing import Any

from agent_auth.adapters.dynamodb import aws_call, conditional_write, from_item, numbers_to_int, to_item

PURGE_AFTER = 7 * 86400


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return numbers_to_int(from_item(item))  # type: ignore[no-any-return]


class RequestTable:
    def __init__(self, client: Any, table: str, grants_table: str) -> None:
        self._client = client
        self._table = table
        self._grants = grants_table

    def _grant_put(self, grant: dict[str, Any]) -> dict[str, Any]:
        item = {"pk": f"client#{grant['client_id']}", "sk": grant["grant_id"], **grant}
        return {
            "Put": {
                "TableName": self._grants,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def create(self, request: dict[str, Any], grant: dict[str, Any] | None) -> None:
        item = {"pk": request["request_id"], "purge_at": int(request["expires_at"]) + PURGE_AFTER, **request}
        writes = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if grant is not None:
            writes.append(self._grant_put(grant))
        with aws_call():
            self._client.transact_write_items(TransactItems=writes)

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": request_id}}, ConsistentRead=True
            )
        item = result.get("Item")
        return _plain(item) if item else None

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

    def decide(
        self,
        request_id: str,
        *,
        status: str,
        approver: str,
        now: int,
        grant: dict[str, Any] | None,
        audit: dict[str, Any],
    ) -> bool:
        """Move a pending, unexpired request to approved or denied, with its grant and audit record,
        in one transaction. False when someone else decided first (or it expired): exactly one wins."""
        update = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": request_id}},
                "UpdateExpression": "SET #s = :status, decided_by = :by, decided_at = :now",
                "ConditionExpression": "#s = :pending AND expires_at > :now",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":status": {"S": status},
                    ":by": {"S": approver},
                    ":now": {"N": str(now)},
                    ":pending": {"S": "pending"},
                },
            }
        }
        writes = [update, audit] + ([self._grant_put(grant)] if grant else [])
        return conditional_write(lambda: self._client.transact_write_items(TransactItems=writes))

    def list_requests(self, limit: int = 200) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with aws_call():
            for page in self._client.get_paginator("scan").paginate(
                TableName=self._table, ConsistentRead=True
            ):
                items += [_plain(i) for i in page["Items"]]
        return sorted(items, key=lambda r: int(r["created_at"]), reverse=True)[:limit]


class GrantTable:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def grants_of(self, client_id: str) -> list[dict[str, Any]]:
        with aws_call():
            result = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"client#{client_id}"}},
                ConsistentRead=True,
            )
        return [_plain(i) for i in result["Items"]]

    def get_grant(self, client_id: str, grant_id: str) -> dict[str, Any] | None:
        with aws_call():
            result = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"client#{client_id}"}, "sk": {"S": grant_id}},
                ConsistentRead=True,
            )
        item = result.get("Item")
        return _plain(item) if item else None

    def consume(self, client_id: str, grant_id: str, now: int) -> bool:
        return conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"client#{client_id}"}, "sk": {"S": grant_id}},
                UpdateExpression="SET #c = :true, consumed_at = :now",
                ConditionExpression=("attribute_exists(pk) AND attribute_not_exists(#c) AND ends_at > :now"),
                ExpressionAttributeNames={"#c": "consumed"},  # a DynamoDB reserved word
                ExpressionAttributeValues={":true": {"BOOL": True}, ":now": {"N": str(now)}},
            )
        )

    def revoke(self, client_id: str, grant_id: str, now: int, audit: dict[str, Any]) -> bool:
        """End a grant at once; False when there is no such grant."""
        update = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": f"client#{client_id}"}, "sk": {"S": grant_id}},
                "UpdateExpression": "SET revoked = :true, revoked_at = :now",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
            }
        }
        return conditional_write(lambda: self._client.transact_write_items(TransactItems=[update, audit]))
