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
    """Audience name -> URI, for every audience the agent can reach (standing, just-in-time or
    delegation)."""
    never: frozenset[str] = frozenset()
    jit: tuple[JitRule, ...] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)
    """What approvers (requestable scopes) and users (delegation scopes, on the consent page) are shown."""
    roles: tuple[str, ...] = ()
    jwks: str | None = None
    """The registered key set as JSON (private_key_jwt), each key with its pinned `alg`."""
    jwks_uri: str | None = None
    secret_hash: str | None = None
    secret_rotated_at: str | None = None
    previous_secret_hash: str | None = None
    """The secret `secret rotate --grace` replaced: it still authenticates until
    `previous_secret_expires_at`, so the owner can roll the new one out without an outage."""
    previous_secret_expires_at: int | None = None
    delegation: Delegation | None = None
    """Acting for users (authorization code); None when the agent may not."""
    exchange: ExchangeRules | None = None
    """On-behalf-of token exchange (RFC 8693); None when the agent may not exchange tokens."""
    auth_locked_until: int | None = None
    """Set by too many failed authentications (oauth/throttle.py): until then every attempt is refused.
    Runtime state on the agent item, never written by `apply`; `secret rotate` clears it."""
    serves: Mapping[str, str] = field(default_factory=dict)
    """Audience name -> URI of each audience whose `resource_servers` name this agent: it may introspect
    tokens for them (RFC 7662 §4)."""
    disabled: bool = False
    """The kill switch (`agent-auth agents disable`): no endpoint serves the agent. Runtime state on the
    agent item, like the lock: `apply` never writes it, so applying a policy never re-enables an agent."""
    tokens_revoked_before: int | None = None
    """Set by the last disable and kept by enable: every token and refresh family of the agent issued at
    or before this second stays revoked."""

    def token_revoked(self, issued_at: int) -> bool:
        """Issued while or before the agent was disabled (at a disable's second: refused, fail closed)."""
        return self.tokens_revoked_before is not None and issued_at <= self.tokens_revoked_before

    @property
    def is_public(self) -> bool:
        return self.auth_method == PUBLIC_CLIENT

    @property
    def requestable(self) -> frozenset[str]:
        """Scopes a just-in-time rule lets the agent ask for, less `never`."""
        return frozenset(s for rule in self.jit for s in rule.scopes) - self.never


@dataclass(frozen=True)
class ApproverGroup:
    """An approver group as applied: its members and whether they must sign in to decide (policy:
    `approvers: {GROUP: {members: [...], sign_in: true}}`)."""

    name: str
    members: tuple[str, ...]
    sign_in: bool = False


@dataclass(frozen=True)
class PreviousSecret:
    """The secret a rotation replaced (by its hash) and when its grace period ends."""

    secret_hash: str
    expires_at: int


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


# --- Delegated access (authorization code + PKCE, refresh tokens, consent) ------------------------------

ConsentMode = Literal["remember", "every_time"]


@dataclass(frozen=True)
class Delegation:
    """What an agent may ask users for (policy: agents.NAME.delegation)."""

    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    offline_access: bool = True
    consent: ConsentMode = "remember"
    scope_audiences: Mapping[str, str] = field(default_factory=dict)
    """Each delegation scope -> its audience name (the URI is in Agent.audiences)."""


@dataclass(frozen=True)
class UserDirectory:
    """The policy's `users`, compiled: who may hold which scopes (by email, or `group:NAME`)."""

    by_email: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Lower-cased email -> scopes of its roles."""
    by_group: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Group name (without `group:`) -> scopes of its roles."""

    def scopes_for(self, email: str, groups: tuple[str, ...] = ()) -> frozenset[str]:
        scopes = set(self.by_email.get(email.lower(), ()))
        for group in groups:
            scopes |= self.by_group.get(group, frozenset())
        return frozenset(scopes)


@dataclass(frozen=True)
class SignIn:
    """An authorization request (RFC 6749 §4.1.1) between /authorize and the code: validated, then
    waiting for the user to sign in upstream and to consent. Its id is the upstream `state`."""

    sign_in_id: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    """What the code will carry if the user allows: requested ∩ delegation ∩ what the user may hold
    (narrowed again once the user is known)."""
    audience: str
    """The audience URI (RFC 8707 `resource`)."""
    code_challenge: str
    created_at: int
    expires_at: int
    state: str | None = None
    nonce: str | None = None
    prompt: str | None = None
    upstream_nonce: str = ""
    upstream_verifier: str = ""
    """The PKCE verifier of our own request to the upstream provider (never sent to the client)."""
    user: str | None = None
    groups: tuple[str, ...] = ()
    return_to: str | None = None
    """Set for an approver's sign-in (a group with `sign_in: true`): the approval page, as a path under
    the issuer, to return to once signed in. Such a sign-in asks no consent and issues no code."""
    browser_hash: str = ""
    """The hash of the value of the cookie set in the browser that started the sign-in upstream: the
    callback is accepted only from that browser (login CSRF, RFC 9700 §4.7.1; OpenID Connect Core
    §3.1.2.1). Empty when no upstream sign-in was started (the user already had a session)."""


@dataclass(frozen=True)
class UserSession:
    """A signed-in user (the `__Host-` session cookie holds the id; only its hash is stored)."""

    session_hash: str
    user: str
    groups: tuple[str, ...]
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class AuthorizationCode:
    """RFC 6749 §4.1.2: single use, at most 60 seconds, bound to everything it was issued for."""

    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    audience: str
    scopes: tuple[str, ...]
    user: str
    created_at: int
    expires_at: int
    family_id: str
    """Assigned at issue: the refresh family (and tokens) a redemption produces, revoked on reuse."""
    nonce: str | None = None
    groups: tuple[str, ...] = ()
    redeemed: bool = False


@dataclass(frozen=True)
class RefreshFamily:
    """A chain of rotating refresh tokens (RFC 9700 §4.14): one current token; an old one presented
    again revokes the whole family."""

    family_id: str
    client_id: str
    user: str
    audience: str
    scopes: tuple[str, ...]
    current_hash: str
    generation: int
    created_at: int
    expires_at: int
    groups: tuple[str, ...] = ()
    revoked: bool = False


@dataclass(frozen=True)
class Consent:
    """What a user allowed an agent, remembered unless the agent's delegation says every_time."""

    user: str
    client_id: str
    audience: str
    scopes: tuple[str, ...]
    granted_at: int
    revoked: bool = False
    withdrawn_at: int | None = None
    """The last time an operator withdrew this consent: refresh families from before it stay ended,
    even after the user consents again."""


# --- On-behalf-of token exchange (RFC 8693) ---------------------------------------------------------------


@dataclass(frozen=True)
class TrustedIssuer:
    """An external issuer whose users' JWTs may be exchanged (policy: trusted_issuers)."""

    issuer: str
    """Compared exactly with the token's `iss`."""
    jwks_uri: str
    audience: str
    """The `aud` the token must name."""
    user_claim: str
    """The claim that names the user, as the policy's `users` does (an email address)."""
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class ExchangeAudience:
    uri: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class ExchangeRules:
    """What an agent may exchange (policy: agents.NAME.exchange), with every trusted issuer, in one read."""

    audiences: Mapping[str, ExchangeAudience]
    """Audience name -> its URI and scopes: the targets the agent may ask for."""
    from_agents: frozenset[str]
    """Agents whose tokens it may exchange, besides its own."""
    max_chain: int
    """The deepest nested `act` a token it receives may carry."""
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
