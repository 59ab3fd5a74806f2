"""The rules of an on-behalf-of exchange that need no storage: the `act` chain, scope and lifetime.

RFC 8693 §4.1: the new token's `act` names the requesting agent, with the subject token's `act` nested
inside it, so the chain reads newest first. Its depth is bounded by the requesting agent's
`exchange.max_chain`. Scope is never widened (requested ∩ the ceiling the grant computed), and the
token never outlives its subject token (RFC 8693 §2.2.1; Keycloak CVE-2026-96460).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent_auth.errors import InvalidRequest, InvalidScope

MAX_PARSED_DEPTH = 8
"""A chain deeper than any policy allows (max_chain is at most 5) is refused while it is read."""
SUBJECT_INVALID = "The subject token is invalid"


def chain_of(act: object) -> tuple[str, ...]:
    """The agents of a token's `act` claim, newest first; InvalidRequest for a malformed claim."""
    chain: list[str] = []
    while act is not None:
        if (
            not isinstance(act, Mapping)
            or not set(act) <= {"sub", "act"}
            or not isinstance(act.get("sub"), str)
        ):
            raise InvalidRequest(SUBJECT_INVALID, reason="malformed_act")
        if len(chain) >= MAX_PARSED_DEPTH:
            raise InvalidRequest("The delegation chain is too long", reason="chain_too_deep")
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


def nested_act(chain: Sequence[str]) -> dict[str, Any] | None:
    """The `act` claim for a chain given newest first (RFC 8693 §4.1)."""
    act: dict[str, Any] | None = None
    for sub in reversed(chain):
        act = {"sub": sub} if act is None else {"sub": sub, "act": act}
    return act


def extend_chain(agent: str, subject_chain: Sequence[str], max_chain: int) -> tuple[str, ...]:
    """The requesting agent in front of the subject's chain, refused beyond `max_chain`."""
    chain = (agent, *subject_chain)
    if len(chain) > max_chain:
        raise InvalidRequest("The delegation chain is too long", reason="chain_too_deep")
    return chain


def narrow_scope(requested: Sequence[str] | None, ceiling: frozenset[str]) -> tuple[str, ...]:
    """RFC 8693 §2.1 `scope`: what was asked for, if all of it is within the ceiling; without `scope`,
    the whole ceiling. Never silently narrowed or widened (security.md: invalid_scope)."""
    if requested is None:
        if not ceiling:
            raise InvalidScope("No scope can be exchanged for this resource", reason="no_exchangeable_scope")
        return tuple(sorted(ceiling))
    if not set(requested) <= ceiling:
        raise InvalidScope("The requested scope exceeds what may be exchanged", reason="exchange_wider_scope")
    return tuple(requested)


def latest_end(subject_expires_at: int, *ends: int | None) -> int:
    """The new token's `exp` may not pass the subject token's, nor the end of anything behind it."""
    return min([subject_expires_at, *(e for e in ends if e is not None)])
