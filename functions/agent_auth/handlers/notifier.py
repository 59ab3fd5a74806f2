"""The access-requests stream: email the approvers of each new pending request.

Powertools' batch processor runs each record and answers with the ones to retry
(ReportBatchItemFailures, by SequenceNumber), so one bad record does not replay the whole batch. Lambda
resumes the shard from the lowest failed sequence number, so good records after a failed one come
again: their approvers may get a second email, as with a partly failed send (jit/notifier.py).

A failed record is logged with the exception's type and the access request's id only: never the
event, never the exception's text, which could hold an address, a reason or a link.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from agent_auth import wiring
from agent_auth.adapters.dynamodb import from_item, numbers_to_int
from agent_auth.adapters.records_codec import request_from_item
from agent_auth.jit.notifier import Notifier
from agent_auth.web.function import Container

logger = Logger(service="agent-auth")
container: Container[Notifier] = Container(wiring.from_environment(wiring.notifier))
notifier = container.get


class NotificationFailed(Exception):
    """What the batch processor sees of a failed record: a fixed text, so its own (debug) logging of
    the exception cannot carry what the original exception said."""

    def __init__(self) -> None:
        super().__init__("notifying the approvers failed")


def lambda_handler(event: dict[str, Any], context: object) -> PartialItemFailureResponse:
    # A processor per invocation: it holds the batch's results, and the dev server calls from a thread.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=notify_record, processor=processor)


def notify_record(record: DynamoDBRecord) -> None:
    """INSERTs with a new image are requests to announce; anything else is done with (success)."""
    image = (record.raw_event.get("dynamodb") or {}).get("NewImage")
    if record.raw_event.get("eventName") != "INSERT" or not image:
        return
    try:
        notifier().notify(request_from_item(numbers_to_int(from_item(image))))
    except Exception as failure:
        logger.warning(
            "approval notification failed",
            extra={
                "failure": type(failure).__name__,
                "cause": type(failure.__cause__).__name__ if failure.__cause__ is not None else None,
                "access_request": _request_id(image),
            },
        )
        raise NotificationFailed from None


def _request_id(image: dict[str, Any]) -> str | None:
    """The id as the table wrote it (an `S` attribute), read without decoding the rest of the image."""
    attribute = image.get("request_id")
    value = attribute.get("S") if isinstance(attribute, dict) else None
    return value[:64] if isinstance(value, str) else None
