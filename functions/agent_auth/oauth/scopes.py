"""Which scopes, for which one audience (RFC 6749 §3.3, RFC 8707 §2, RFC 9068 §3).

Nothing is silently widened or narrowed: a requested scope the agent may not have is invalid_scope,
an audience it may not reach is invalid_target. Every token names exactly one audience.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent_auth.errors import InvalidScope, InvalidTarget
from agent_auth.records import Agent, JitGrant

SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
MAX_SCOPES = 50


@dataclass(frozen=True)
class ScopeDecision:
    audience: str
    """The audience's URI: the token's `aud`."""
    scopes: tuple[str, ...]
    grants: tuple[JitGrant, ...] = field(default=())
    """Just-in-time grants the token draws on; its exp must not pass the earliest of their ends."""

    @property
    def ends_at(self) -> int | None:
        return min((g.ends_at for g in self.grants), default=None)

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


def parse_scope(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    tokens = raw.split(" ")
    if len(tokens) > MAX_SCOPES or not all(SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("The scope parameter is malformed", reason="malformed_scope")
    return list(dict.fromkeys(tokens))


def check_resource(value: str) -> str:
    """RFC 8707 §2: an absolute URI without a fragment."""
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. "http://[x": an invalid IPv6 literal
        raise InvalidTarget(
            "The resource parameter must be an absolute URI", reason="malformed_resource"
        ) from exc
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
        raise InvalidTarget("The resource parameter must be an absolute URI", reason="malformed_resource")
    return value


def decide(
    agent: Agent,
    requested: list[str] | None,
    resources: list[str],
    grants: Sequence[JitGrant] = (),
) -> ScopeDecision:
    """Standing access from the compiled agent: `scopes` maps scope -> audience name, `audiences` maps
    audience name -> URI, `never` lists what can never be issued. Active just-in-time `grants` add
    scopes, but only when asked for by name: the default stays standing."""
    allowed = agent.scopes
    uris = agent.audiences
    never = agent.never
    if len(resources) > 1:
        raise InvalidTarget("A token names exactly one resource", reason="several_resources")
    audience: str | None = None
    if resources:
        uri = check_resource(resources[0])
        audience = next((name for name, u in uris.items() if u == uri), None)
        if audience is None:
            raise InvalidTarget("The resource is not allowed for this client", reason="resource_not_allowed")
    if requested is None:
        candidates = [s for s, a in allowed.items() if s not in never and a == (audience or a)]
        audiences = {allowed[s] for s in candidates}
        if not candidates:
            raise InvalidScope(
                "The client has no standing scope for this resource", reason="no_standing_scope"
            )
        if len(audiences) > 1:
            raise InvalidTarget(
                "The client's scopes span several resources: name one with the resource parameter",
                reason="resource_required",
            )
        return ScopeDecision(uris[audiences.pop()], tuple(sorted(candidates)))
    granted = {s: g for g in sorted(grants, key=lambda g: g.ends_at) for s in g.scopes}
    refused = [s for s in requested if (s not in allowed and s not in granted) or s in never]
    if refused:
        raise InvalidScope("The requested scope is not allowed for this client", reason="scope_not_allowed")
    drawn = {id(g): g for s, g in granted.items() if s in requested and s not in allowed}
    audiences = {allowed.get(s) or granted[s].audience for s in requested}
    if audience is not None and audiences != {audience}:
        raise InvalidScope(
            "The requested scope does not belong to the resource", reason="scope_other_resource"
        )
    if len(audiences) > 1:
        raise InvalidScope(
            "The requested scopes belong to more than one resource", reason="scope_several_resources"
        )
    return ScopeDecision(uris[audiences.pop()], tuple(requested), tuple(drawn.values()))
