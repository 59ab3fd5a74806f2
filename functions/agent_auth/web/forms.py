"""Strict application/x-www-form-urlencoded parsing (RFC 6749 §3.1, §3.2, Appendix B).

Everything is checked before any work is done: content type, size, field count, UTF-8, NUL bytes and
repeated parameters. Empty values count as absent; unknown parameters are kept and ignored by callers.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from agent_auth.errors import InvalidRequest
from agent_auth.oauth.params import REPEATABLE, Form
from agent_auth.web.request import MAX_BODY_BYTES, Request

MAX_FIELDS = 32
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def _decode(raw: bytes) -> str:
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    if b"\x00" in decoded:
        raise InvalidRequest("Request contains a NUL byte", reason="nul_byte")
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("Request is not valid UTF-8", reason="invalid_utf8") from exc


def parse_form(request: Request) -> Form:
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded", reason="wrong_content_type"
        )
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest("Request body is too large", reason="body_too_large")
    pairs = [p for p in body.split(b"&") if p]
    if len(pairs) > MAX_FIELDS:
        raise InvalidRequest("Too many parameters", reason="too_many_fields")
    fields: dict[str, list[str]] = {}
    for pair in pairs:
        raw_name, _, raw_value = pair.partition(b"=")
        name, value = _decode(raw_name), _decode(raw_value)
        if not value:
            continue  # RFC 6749 §3.1: parameters sent without a value are treated as omitted
        if name in fields and name not in REPEATABLE:
            raise InvalidRequest("Parameters must not be repeated", reason=f"repeated_parameter:{name[:40]}")
        fields.setdefault(name, []).append(value)
    return Form(fields)
