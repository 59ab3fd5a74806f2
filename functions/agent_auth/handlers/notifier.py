"""The access-requests stream: email the approvers of each new pending request."""

from __future__ import annotations

from typing import Any

from agent_auth import wiring
from agent_auth.adapters.dynamodb import from_item, numbers_to_int
from agent_auth.adapters.records_codec import request_from_item
from agent_auth.jit.notifier import Notifier
from agent_auth.web.function import Container

container: Container[Notifier] = Container(wiring.from_environment(wiring.notifier))
notifier = container.get


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Returns the records to retry (ReportBatchItemFailures), so one bad address does not replay all."""
    failures = []
    for record in event.get("Records", []):
        if record.get("eventName") != "INSERT":
            continue
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            continue
        try:
            notifier().notify(request_from_item(numbers_to_int(from_item(image))))
        except Exception:
            failures.append({"itemIdentifier": record.get("dynamodb", {}).get("SequenceNumber", "")})
    return {"batchItemFailures": failures}
