"""The policy file's shape (product.md, "The policy file"), as pydantic models.

Shape only: types, required keys, unknown keys, formats. Whether references resolve and rules agree
is checked in checks.py, which knows the whole document.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from agent_auth.names import EMAIL_PATTERN, NAME_PATTERN, SCOPE_PATTERN

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ScopeName = Annotated[str, StringConstraints(pattern=SCOPE_PATTERN)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
DURATION = re.compile(r"^(\d+)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_JIT_SECONDS = 7 * 86400


def parse_duration(value: str | int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = DURATION.match(str(value))
        if not match:
            raise ValueError("a duration is a number with a unit, such as 30m, 1h or 1d")
        seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
    if not 60 <= seconds <= MAX_JIT_SECONDS:
        raise ValueError("a duration is between 1m and 7d")
    return seconds


def check_uri(value: str, *, allow_http_loopback: bool = True) -> str:
    """An absolute http(s) URI without a fragment (RFC 6749 §3.1.2, RFC 8707 §2); plain http only on a
    loopback address (RFC 8252 §7.3), where nothing leaves the machine."""
    from urllib.parse import urlsplit

    if "#" in value or any(c.isspace() or not c.isprintable() for c in value):
        # An empty fragment ("...#") is still a fragment; whitespace would be silently dropped by urlsplit.
        raise ValueError("an absolute http(s) URI without a fragment or spaces")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError("not a valid URI") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("an absolute http(s) URI without a fragment")
    if parts.scheme == "http" and not (allow_http_loopback and parts.hostname in LOOPBACK_HOSTS):
        raise ValueError("https, or http only on a loopback address (127.0.0.1, [::1], localhost)")
    return value


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Audience(Strict):
    uri: str
    scopes: dict[ScopeName, Annotated[str, StringConstraints(min_length=1, max_length=200)]]
    resource_servers: list[Name] = Field(default_factory=list)
    """Agents that act for this audience's resource server: they may introspect its tokens (RFC 7662 §4)."""

    # Like a redirect URI, plain http only on loopback: a resource server on the developer's machine.
    _uri = field_validator("uri")(lambda cls, v: check_uri(v))

    @field_validator("scopes")
    @classmethod
    def _some_scopes(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("an audience needs at least one scope")
        return value


TRUSTED_ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "EdDSA")
"""Asymmetric only (RFC 8725 §3.1-3.2); ES384 because AWS STS web identity tokens use it."""
TrustedAlgorithm = Literal["RS256", "PS256", "ES256", "ES384", "EdDSA"]


def _default_algorithms() -> list[TrustedAlgorithm]:
    return ["RS256"]


CLAIM_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$"


class TrustedIssuer(Strict):
    """An external issuer whose users' JWTs may be exchanged (RFC 8693 §2.1 `subject_token`)."""

    issuer: str
    jwks_uri: str
    audience: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """The `aud` its tokens must name (the token was meant for us, not for some other service)."""
    user_claim: Annotated[str, StringConstraints(pattern=CLAIM_NAME)] = "email"
    """The claim that names the user as `users:` does (an email address)."""
    algorithms: list[TrustedAlgorithm] = Field(default_factory=_default_algorithms, min_length=1)

    # https, or http only on a loopback address (the development provider).
    _uris = field_validator("issuer", "jwks_uri")(lambda cls, v: check_uri(v))


class JitRule(Strict):
    role: Name | None = None
    scopes: list[ScopeName] | None = Field(default=None, min_length=1)
    approvers: Name | None = None
    auto: bool = False
    max_duration: int = 3600
    single_use: bool = False

    @field_validator("max_duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ValueError("a duration is a number with a unit, such as 30m, 1h or 1d")
        return parse_duration(value)

    @model_validator(mode="after")
    def _one_of_each(self) -> JitRule:
        if (self.role is None) == (self.scopes is None):
            raise ValueError("give exactly one of `role` or `scopes`")
        if (self.approvers is None) == (not self.auto):
            raise ValueError("give exactly one of `approvers: GROUP` or `auto: true`")
        return self


RedirectUri = Annotated[str, AfterValidator(check_uri)]


class Delegation(Strict):
    """Acting for users (authorization code + PKCE): where codes may go, and what may be asked for."""

    redirect_uris: list[RedirectUri] = Field(min_length=1)
    scopes: list[ScopeName] = Field(min_length=1)
    offline_access: bool = True
    """Whether `offline_access` yields a refresh token."""
    consent: Literal["remember", "every_time"] = "remember"


class Exchange(Strict):
    """On-behalf-of (RFC 8693): the audiences the agent may exchange tokens for, whose tokens it may
    exchange (its own always count), and how many agents may stand between the user and the call."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    audiences: list[Name] = Field(min_length=1)
    from_: list[Name] = Field(default_factory=list, alias="from")
    max_chain: int = Field(default=1, ge=1, le=5)


class Agent(Strict):
    owner: Email
    auth: Literal["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    roles: list[Name] = Field(default_factory=list)
    jit: list[JitRule] = Field(default_factory=list)
    never: list[ScopeName] = Field(default_factory=list)
    delegation: Delegation | None = None
    exchange: Exchange | None = None

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_uri(value)


class ApproverGroup(Strict):
    """An approver group in its mapping form: its members, and whether they must sign in (through the
    upstream OpenID provider) as the address their link names before the approval page decides."""

    members: list[Email]
    sign_in: bool = False


APPROVER_LIST, APPROVER_MAPPING = "approver-list", "approver-mapping"
"""Tags of the two forms; they are not keys of the document, so error paths leave them out."""


def _approver_form(value: Any) -> str | None:
    if isinstance(value, dict | ApproverGroup):
        return APPROVER_MAPPING
    return APPROVER_LIST if isinstance(value, list) else None


Approvers = Annotated[
    Annotated[list[Email], Tag(APPROVER_LIST)] | Annotated[ApproverGroup, Tag(APPROVER_MAPPING)],
    Discriminator(
        _approver_form,
        custom_error_type="approver_group",
        custom_error_message="an approver group is a list of email addresses, "
        "or a mapping {members: [...], sign_in: true}",
    ),
]
"""`GROUP: [emails]` (today's form), or `GROUP: {members: [emails], sign_in: true}`."""


def approver_members(group: list[str] | ApproverGroup) -> list[str]:
    return group.members if isinstance(group, ApproverGroup) else group


def approver_sign_in(group: list[str] | ApproverGroup) -> bool:
    return isinstance(group, ApproverGroup) and group.sign_in


class Policy(Strict):
    version: Literal[1]
    audiences: dict[Name, Audience] = Field(default_factory=dict)
    roles: dict[Name, list[ScopeName]] = Field(default_factory=dict)
    approvers: dict[Name, Approvers] = Field(default_factory=dict)
    users: dict[str, list[Name]] = Field(default_factory=dict)
    trusted_issuers: list[TrustedIssuer] = Field(default_factory=list)
    agents: dict[Name, Agent] = Field(default_factory=dict)
