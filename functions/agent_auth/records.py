"""Typed records: what the use cases read and write, with no storage layout in them.

The adapters turn DynamoDB items into these and back (adapters/records_codec.py); protocol, just-in-time
and operator code never see an item. Each record is immutable: a change is a new record and a
conditional write, never an in-place edit.

Naming: an OAuth *grant type* (client_credentials, the access-request poll) is a class under
oauth/grant_types/; a *JIT grant* (JitGrant) is elevated access an approval created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

PUBLIC_CLIENT = "none"
"""The auth method of a public agent: no secret, no key; PKCE alone proves it (RFC 7636, OAuth 2.1)."""
SECRET_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class JitRule:
    """One just-in-time rule of an agent, resolved to scopes of one audience."""

    scopes: tuple[str, ...]
    audience: str
    approvers: str | None
    auto: bool
    max_duration: int
    single_use: bool


@dataclass(frozen=True)
class Agent:
    """An agent as the policy compiled it: all a token decision needs, in one read."""

    client_id: str
    owner: str
    auth_method: str
    scopes: Mapping[str, str] = field(default_factory=dict)
    """Standing access: scope -> audience name."""
    audiences: Mapping[str, str] = field(default_factory=dict)
    """Audience name -> URI, for every audience the agent can reach (standing or just-in-time)."""
    never: frozenset[str] = frozenset()
    jit: tuple[JitRule, ...] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)
    """What approvers are shown for each requestable scope."""
    roles: tuple[str, ...] = ()
    jwks: str | None = None
    """The registered key set as JSON (private_key_jwt), each key with its pinned `alg`."""
    jwks_uri: str | None = None
    secret_hash: str | None = None
    secret_rotated_at: str | None = None
    auth_locked_until: int | None = None
    """Set by too many failed authentications (oauth/throttle.py): until then every attempt is refused.
    Runtime state on the agent item, never written by `apply`; `secret rotate` clears it."""

    @property
    def is_public(self) -> bool:
        return self.auth_method == PUBLIC_CLIENT

    @property
    def requestable(self) -> frozenset[str]:
        """Scopes a just-in-time rule lets the agent ask for, less `never`."""
        return frozenset(s for rule in self.jit for s in rule.scopes) - self.never


RequestStatus = Literal["pending", "approved", "denied"]


@dataclass(frozen=True)
class AccessRequest:
    """An agent's request for just-in-time access, and the decision on it."""

    request_id: str
    client_id: str
    owner: str
    scopes: tuple[str, ...]
    audience: str
    audience_uri: str
    reason: str
    duration: int
    single_use: bool
    approvers: str | None
    status: RequestStatus
    created_at: int
    expires_at: int
    """The end of the wait for a decision (and of the approval links)."""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    digest: str = ""
    """What the approver signs off on; links are bound to it (jit/requests.request_digest)."""
    decided_by: str | None = None
    decided_at: int | None = None
    deny_reason: str | None = None

    def is_pending(self, now: int) -> bool:
        return self.status == "pending" and now < self.expires_at

    def decided(self, status: RequestStatus, by: str, at: int) -> AccessRequest:
        return replace(self, status=status, decided_by=by, decided_at=at)


@dataclass(frozen=True)
class JitGrant:
    """Elevated access an approval created: the request's scopes, from the decision for its duration."""

    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    audience: str
    audience_uri: str
    starts_at: int
    ends_at: int
    request_id: str
    single_use: bool = False
    approved_by: str | None = None
    revoked: bool = False
    consumed: bool = False

    def is_usable(self, now: int) -> bool:
        """Expiry in code on every read: DynamoDB TTL only cleans up, days later."""
        return not self.revoked and not self.consumed and self.starts_at <= now < self.ends_at


def to_plain(record: Any) -> dict[str, Any]:
    """A record as plain JSON-ready data (tuples as lists, mappings as dicts), for output and storage."""
    data: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, tuple) and value and isinstance(value[0], JitRule):
            value = [to_plain(v) for v in value]
        elif isinstance(value, tuple | frozenset):
            value = sorted(value) if isinstance(value, frozenset) else list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        data[f.name] = value
    return data
