"""Timestamps as operators read them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_seconds(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
