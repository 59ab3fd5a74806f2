"""Redirect URI matching (RFC 6749 §3.1.2, RFC 9700 §4.1.3, RFC 8252 §7.3).

Exact string comparison with the registered URIs, with one exception OAuth 2.1 makes for native apps:
on `http://127.0.0.1` and `http://[::1]` any port is accepted, because the app picks a free one at run
time. Everything else (path, query, case, scheme, userinfo) must match to the letter.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")


def _without_port(uri: str) -> str | None:
    """A loopback http URI with its port removed, or None if it is not one (userinfo never passes)."""
    if not uri.startswith("http://"):
        return None
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if "@" in parts.netloc or host not in LOOPBACK_HOSTS:
        return None
    return uri.replace(f"//{parts.netloc}", f"//{host}", 1)


def redirect_uri_matches(presented: str, registered: Iterable[str]) -> bool:
    if "#" in presented:
        return False  # RFC 6749 §3.1.2: no fragment
    for uri in registered:
        if presented == uri:
            return True
        loose = _without_port(presented)
        if loose is not None and loose == _without_port(uri):
            return True
    return False
