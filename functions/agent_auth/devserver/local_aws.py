"""What AWS does around the functions, played locally: the requests stream, the mailbox, the clock.

- The access-requests table's stream: moto records stream changes but serves no stream API we can
  poll, so a thread reads moto's own stream records and calls the notifier's lambda_handler with the
  same event shape Lambda would, as the event source mapping does on AWS. The thread sleeps until a
  request to /access-requests has been answered (the only writer of new requests), so it costs the
  other requests nothing.
- The mailbox: every email SES accepted, as `GET /_dev/mailbox` shows it.
- The clock: `POST /_dev/clock` with `advance=SECONDS` moves the handlers' clock forward, to see grants
  and requests expire without waiting.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from typing import Any

from agent_auth import routes
from agent_auth.clock import OffsetClock
from agent_auth.devserver.serialized_moto import MOTO_LOCK
from agent_auth.devserver.server import load_handler

ACCOUNT = "123456789012"


class StreamPump:
    def __init__(self, region: str, table: str) -> None:
        self._region = region
        self._table = table
        self._seen = 0
        self._wake = threading.Event()
        self._stopping = False
        self._handler = load_handler(routes.NOTIFIER)
        self._thread = threading.Thread(target=self._run, name="agent-auth-stream", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=5)

    def after(self, handler: Any) -> Any:
        """`handler`, then wake the pump: new stream records may be waiting."""

        def handle_then_wake(event: dict[str, Any], context: object) -> dict[str, Any]:
            try:
                result: dict[str, Any] = handler(event, context)
                return result
            finally:
                self._wake.set()

        return handle_then_wake

    def _new_records(self) -> list[dict[str, Any]]:
        """Stream records not yet played, as plain JSON, read under the lock (handlers write them)."""
        from moto.dynamodb.models import dynamodb_backends

        with MOTO_LOCK:
            table = dynamodb_backends[ACCOUNT][self._region].tables[self._table]
            records = list(table.stream_shard.items)[self._seen :] if table.stream_shard else []
            self._seen += len(records)
            return [json.loads(json.dumps(r.to_json(), default=str)) for r in records]

    def pump_once(self) -> int:
        records = self._new_records()
        if records:
            event = {"Records": records}
            result = self._handler(event, None)
            self.errors += [str(f) for f in result.get("batchItemFailures", [])]
        return len(records)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.pump_once()
            except Exception as exc:
                self.errors.append(type(exc).__name__)


def mailbox(region: str) -> list[dict[str, str]]:
    from moto.ses.models import ses_backends

    with MOTO_LOCK:
        sent_messages = list(ses_backends[ACCOUNT][region].sent_messages)
    messages = []
    for sent in sent_messages:
        raw = getattr(sent, "raw_data", None)
        if raw is None:
            continue
        parsed = message_from_bytes(raw.encode() if isinstance(raw, str) else raw, policy=policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        date = parsed["Date"]
        messages.append(
            {
                "to": str(parsed["To"]),
                "subject": str(parsed["Subject"]),
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
                "sent_at": (parsedate_to_datetime(date) if date else datetime.now(UTC)).isoformat(),
            }
        )
    return messages


def _valid_advance(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10 * 365 * 86400


def dev_routes(region: str, clock: OffsetClock) -> dict[str, Any]:
    """Development-only routes, as lambda_handler-shaped functions the dev server can mount."""

    def mailbox_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        if event["httpMethod"] != "GET":
            return {"statusCode": 405, "headers": {"Allow": "GET"}, "body": ""}
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            "body": json.dumps(mailbox(region)),
        }

    def clock_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        if event["httpMethod"] == "POST":
            # JSON only: a web page in the developer's browser cannot send it cross-site without a CORS
            # preflight, which this server never grants, so no page can move the clock.
            content_type = next(
                (v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), ""
            )
            try:
                advance = json.loads(event.get("body") or "")["advance"]
            except (ValueError, KeyError, TypeError):
                advance = None
            if not content_type.startswith("application/json") or not _valid_advance(advance):
                return {
                    "statusCode": 400,
                    "headers": {"Content-Type": "application/json"},
                    "body": json.dumps(
                        {"error": "invalid_request", "error_description": 'POST JSON {"advance": SECONDS}'}
                    ),
                }
            clock.offset += advance
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"now": clock.now(), "offset": clock.offset}),
        }

    return {"/_dev/mailbox": mailbox_handler, "/_dev/clock": clock_handler}
