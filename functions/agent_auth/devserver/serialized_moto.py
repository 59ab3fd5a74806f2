"""moto, one AWS call at a time: the development server keeps the guarantees DynamoDB gives.

DynamoDB applies each write and each transaction atomically: of two conditional writes to one item
exactly one wins, and a cancelled transaction changes nothing. moto's backend is plain Python objects
without locks, and its TransactWriteItems deep-copies every table it touches and puts the copy back when
a condition fails. Under the development server's threads that loses what other requests wrote in the
meantime (audit records, the winner of an approval race) and can break the copy mid-iteration (a 500).

So every entry into moto takes one process-wide lock, held for exactly moto's handling of one call:

- in process (the handlers, the stream pump, the tables' setup): around moto's botocore stub, which
  answers each request botocore sends (its `before-send` event), so the lock is never held while
  anything waits on a socket;
- over HTTP (the CLI's `--dev`): around the moto server's WSGI application, after the request body has
  been read, so a slow client cannot hold it.

Requests still interleave everywhere else (HTTP, parsing, signature checks), as concurrent Lambda
invocations do; one uncontended lock per AWS call costs microseconds (performance target 5).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from typing import Any

MOTO_LOCK = threading.RLock()
"""Held while moto handles one call or while moto's state is read directly (stream records, the
mailbox). Reentrant, so code holding it may still call AWS."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class InProcessSerializer:
    """Wraps moto's botocore stub (the one `mock_aws()` enables) so each call it answers holds the lock."""

    def __init__(self) -> None:
        self._wrapper: Callable[[Any], Any] | None = None
        self._previous: Callable[[Any], Any] | None = None

    def start(self) -> None:
        from moto.core.models import botocore_stubber

        handle = botocore_stubber.process_request
        self._previous = botocore_stubber.__dict__.get("process_request")

        def serialized(request: Any) -> Any:
            with MOTO_LOCK:
                return handle(request)

        self._wrapper = serialized
        botocore_stubber.process_request = serialized  # type: ignore[method-assign]

    def stop(self) -> None:
        from moto.core.models import botocore_stubber

        if self._wrapper is None or botocore_stubber.__dict__.get("process_request") is not self._wrapper:
            return  # not ours (any more): leave it as it is
        if self._previous is None:
            del botocore_stubber.process_request
        else:
            botocore_stubber.process_request = self._previous  # type: ignore[method-assign, assignment]
        self._wrapper = None


def serialized_wsgi(app: WsgiApp) -> WsgiApp:
    """`app`, run under the lock with its body read before and its response produced inside."""
    from werkzeug.wsgi import get_input_stream

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = get_input_stream(environ).read()  # outside the lock: the client may be slow
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        environ["CONTENT_LENGTH"] = str(len(body))
        with MOTO_LOCK:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return serve


class LocalAwsEndpoint:
    """moto over HTTP on loopback, for the CLI's `--dev` (moto's ThreadedMotoServer, with the lock and
    a read timeout). It serves the same backend the handlers use in process."""

    READ_SECONDS = 30
    """A connection that sends nothing for this long is closed (an idle CLI, or a stalled body)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class TimedRequestHandler(MotoRequestHandler):
            timeout = self.READ_SECONDS

        app = serialized_wsgi(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(host, 0, app, threaded=True, request_handler=TimedRequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="agent-auth-local-aws", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
