"""The signing key set (signing_keys.py) as one item of the agents table, `keys#signing`.

In the agents table because the token function reads that table already; the well-known function may read
this one item only (an IAM condition on dynamodb:LeadingKeys). Every write is conditional on the version
it read, so two rotations at once cannot both win.
"""

from __future__ import annotations

from typing import Any

from agent_auth.adapters.dynamodb import aws_call, conditional_write, from_item, numbers_to_int, to_item
from agent_auth.ports import Write
from agent_auth.signing_keys import KEY_SET_ITEM, KeySet, SigningKey


def key_set_from_item(item: dict[str, Any]) -> KeySet:
    return KeySet(
        keys=tuple(
            SigningKey(
                kid=str(k["kid"]),
                key_arn=str(k["key_arn"]),
                alg=str(k["alg"]),
                activates_at=int(k["activates_at"]),
                created_at=int(k.get("created_at") or 0),
                alias=k.get("alias"),
                retires_at=int(k["retires_at"]) if k.get("retires_at") is not None else None,
                retired=bool(k.get("retired")),
                managed=bool(k.get("managed")),
            )
            for k in item.get("keys") or ()
        ),
        version=int(item.get("version") or 0),
    )


def key_set_to_item(key_set: KeySet) -> dict[str, Any]:
    keys = [
        {
            "kid": k.kid,
            "key_arn": k.key_arn,
            "alg": k.alg,
            "activates_at": k.activates_at,
            "created_at": k.created_at,
            "alias": k.alias,
            "retires_at": k.retires_at,
            "retired": k.retired,
            "managed": k.managed,
        }
        for k in key_set.keys
    ]
    return to_item(
        {
            "pk": KEY_SET_ITEM,
            "keys": [{n: v for n, v in k.items() if v is not None} for k in keys],
            "version": key_set.version,
        }
    )


class KeySetTable:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get_key_set(self) -> KeySet | None:
        with aws_call():
            # Consistent: the CLI reads what it wrote last; the functions read it once a minute.
            result = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": KEY_SET_ITEM}}, ConsistentRead=True
            )
        item = result.get("Item")
        return key_set_from_item(numbers_to_int(from_item(item))) if item else None

    def put_key_set(self, key_set: KeySet, audit: Write) -> bool:
        """False when someone else wrote the key set since it was read (its version moved)."""
        put: dict[str, Any] = {"TableName": self._table, "Item": key_set_to_item(key_set)}
        if key_set.version <= 1:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :read"
            put["ExpressionAttributeValues"] = {":read": {"N": str(key_set.version - 1)}}
        return conditional_write(
            lambda: self._client.transact_write_items(TransactItems=[{"Put": put}, audit.operation])
        )
