"""The parameters of an OAuth request (RFC 6749 §3.1, §3.2): a bag of single values, some repeatable.

Parsing the HTTP body into this bag is the web layer's job (web/forms.py); the protocol code only reads it.
"""

from __future__ import annotations

REPEATABLE = frozenset({"resource", "audience"})
"""RFC 8707 §2 lets `resource` repeat, and RFC 8693 §2.1 `audience` too; the grant decides whether more
than one makes sense."""


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str) -> str | None:
        values = self._fields.get(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        return list(self._fields.get(name, ()))

    def __contains__(self, name: str) -> bool:
        return name in self._fields
