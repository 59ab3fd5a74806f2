"""Strict form parsing (RFC 6749 §3.1, §3.2, Appendix B)."""

from __future__ import annotations

import pytest

from agent_auth.errors import InvalidRequest
from agent_auth.web.forms import parse_form
from agent_auth.web.request import Request


def request(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Request:
    return Request(
        method="POST",
        path="/token",
        headers={"content-type": content_type},
        body=body,
        source_ip="198.51.100.1",
        http_request_id="r",
    )


def test_decodes_plus_and_percent() -> None:
    form = parse_form(request(b"scope=a+b&name=caf%C3%A9"))
    assert form.get("scope") == "a b" and form.get("name") == "café"


def test_charset_parameter_is_accepted() -> None:
    assert parse_form(request(b"a=1", "application/x-www-form-urlencoded; charset=UTF-8")).get("a") == "1"


def test_empty_values_count_as_absent() -> None:
    form = parse_form(request(b"scope=&grant_type=client_credentials"))
    assert form.get("scope") is None and "scope" not in form


def test_empty_value_repeated_is_not_a_repeat() -> None:
    assert parse_form(request(b"scope=&scope=x")).get("scope") == "x"


def test_resource_may_repeat_per_rfc8707() -> None:
    assert parse_form(request(b"resource=a&resource=b")).get_all("resource") == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"a=1&a=2", "application/x-www-form-urlencoded", "repeated_parameter:a"),
        (b"a=%ff", "application/x-www-form-urlencoded", "invalid_utf8"),
        (b"a=\xff", "application/x-www-form-urlencoded", "invalid_utf8"),
        (b"a=%00", "application/x-www-form-urlencoded", "nul_byte"),
        (b"a=1", "application/json", "wrong_content_type"),
        (b"a=1", "", "wrong_content_type"),
        (b"a=" + b"x" * 17000, "application/x-www-form-urlencoded", "body_too_large"),
        (b"&".join(b"f%d=1" % i for i in range(33)), "application/x-www-form-urlencoded", "too_many_fields"),
    ],
)
def test_rejected_before_any_work(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(request(body, content_type))
    assert caught.value.reason == reason
