"""The development server's own routes: the clock moves only for a JSON POST (no cross-site form)."""

from __future__ import annotations

import json

from agent_auth.clock import OffsetClock
from agent_auth.devserver.events import rest_proxy_event
from agent_auth.devserver.local_aws import dev_routes


def post(body: bytes, content_type: str) -> int:
    clock_route = dev_routes("us-east-1", CLOCK)["/_dev/clock"]
    event = rest_proxy_event(
        method="POST", path="/_dev/clock", headers=[("Content-Type", content_type)], body=body
    )
    return int(clock_route(event, None)["statusCode"])


CLOCK = OffsetClock()


def test_json_advances_the_clock() -> None:
    before = CLOCK.offset
    assert post(json.dumps({"advance": 60}).encode(), "application/json") == 200
    assert CLOCK.offset == before + 60


def test_a_form_post_from_any_web_page_is_refused() -> None:
    before = CLOCK.offset
    assert post(b"advance=60", "application/x-www-form-urlencoded") == 400
    assert post(b'{"advance": 60}', "text/plain") == 400
    assert CLOCK.offset == before


def test_nonsense_advances_are_refused() -> None:
    for value in ("60", -5, 10**12, True, 1.5):
        assert post(json.dumps({"advance": value}).encode(), "application/json") == 400
