"""The DynamoDB tables, defined once.

The CDK stacks, the development server's moto tables and the tests all build their tables from these
specs, so names, keys, indexes and TTL attributes cannot drift between AWS and a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    """Used for the CDK construct id, the CloudFormation output and the environment variable."""
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = field(default=())
    stream: bool = False
    """A DynamoDB stream of new images (the approval notifier reads the requests'; the audit export the
    audit table's)."""

    @property
    def env_var(self) -> str:
        return f"{self.logical_name.upper()}_TABLE"

    @property
    def output_key(self) -> str:
        """The CloudFormation output that names the deployed table (read by `--stack NAME`)."""
        return f"{self.logical_name.capitalize()}TableName"

    def key_attributes(self) -> list[str]:
        names = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        for index in self.indexes:
            names += [index.partition_key] + ([index.sort_key] if index.sort_key else [])
        return list(dict.fromkeys(names))


AGENTS = TableSpec(
    logical_name="agents",
    partition_key="pk",
    # Compiled policy: one item per agent ("agent#<client_id>") and the applied policy ("policy#current").
)

REPLAY = TableSpec(
    logical_name="replay",
    partition_key="pk",
    ttl_attribute="expires_at",
    # One marker per client assertion jti, kept until the assertion expires (RFC 7523 §3 item 7).
)

AUDIT_BY_HOUR = Index(name="by-hour", partition_key="hour", sort_key="sk")
"""The whole trail by time: "2026-12-01T22" (UTC), read newest bucket first (adapters/audit_table.py)."""
AUDIT_BY_USER = Index(name="by-user", partition_key="user_key", sort_key="sk")
"""One user's records: "user#<email>", only on records that act for a user."""

AUDIT = TableSpec(
    logical_name="audit",
    # "agent#<client_id>" of a real agent name, "operator#<name>" for changes without an agent, or one
    # fixed "unattributed" partition: never a key made of what an unauthenticated client sent.
    partition_key="pk",
    sort_key="sk",  # "<ISO-8601 time>#<record id>": newest first with ScanIndexForward=False
    ttl_attribute="expires_at",  # retention, not correctness
    indexes=(AUDIT_BY_HOUR, AUDIT_BY_USER),
    stream=True,  # exported to S3 (infra audit_export.py), so the trail outlives the table's retention
)

REQUESTS = TableSpec(
    logical_name="requests",
    partition_key="pk",  # the request id
    ttl_attribute="purge_at",  # a week after the request's own expiry, which code checks
    stream=True,
)

GRANTS = TableSpec(
    logical_name="grants",
    partition_key="pk",  # "client#<client_id>": a token reads all of a client's grants in one query
    sort_key="sk",  # the grant id (= the request id it came from)
    ttl_attribute="ends_at",  # the grant's end; code compares it on every read
)

THROTTLE = TableSpec(
    logical_name="throttle",
    partition_key="pk",  # "source#<address>#<window end>", "agent#<client_id>#<window end>", "decoy#client"
    ttl_attribute="expires_at",  # the window's end; the key names the window, so code never reads an old one
    # Failed client authentications per source address and per known agent (oauth/throttle.py).
)

ALL_TABLES: tuple[TableSpec, ...] = (AGENTS, REPLAY, AUDIT, REQUESTS, GRANTS, THROTTLE)

ISSUER_OUTPUT = "IssuerUrl"
SIGNING_KEY_OUTPUT = "SigningKeyArn"
SIGNING_ALG_OUTPUT = "SigningAlg"
SIGNING_KEY_ALIAS_OUTPUT = "SigningKeyAliasPrefix"
"""Only on stacks whose signing keys rotate (context signingKeyRotation), with TOKEN_LIFETIME_OUTPUT."""
TOKEN_LIFETIME_OUTPUT = "TokenLifetimeSeconds"

# --- Delegated access (authorization code + PKCE, refresh tokens, consent) ------------------------------

SIGN_INS = TableSpec(
    logical_name="signins",
    partition_key="pk",  # "signin#<id>" (the upstream state) and "session#<hash of the session cookie>"
    ttl_attribute="expires_at",  # the sign-in's or the session's end; code compares it on every read
)

CODES = TableSpec(
    logical_name="codes",
    partition_key="pk",  # the SHA-256 of the authorization code
    # A day after the code's 60 seconds, which code checks: a code presented again within that day is
    # still recognised as reused, and what its first redemption produced is revoked (RFC 6749 §4.1.2).
    ttl_attribute="purge_at",
)

REFRESH = TableSpec(
    logical_name="refresh",
    partition_key="pk",  # the refresh family id; the current token is a hash in the item
    ttl_attribute="expires_at",  # the family's absolute end; code compares it on every read
)

CONSENTS = TableSpec(
    logical_name="consents",
    partition_key="pk",  # "user#<lower-cased email>": a user's consents are one query
    sort_key="sk",  # the agent's client_id
    # No TTL: a remembered consent lasts until it is revoked.
)

ALL_TABLES = (*ALL_TABLES, SIGN_INS, CODES, REFRESH, CONSENTS)

# --- Token lifecycle (introspection, revocation, the kill switch) ---------------------------------------

REVOCATIONS = TableSpec(
    logical_name="revocations",
    # "jti#<token id>" (an access token, RFC 7009) and "family#<refresh family id>" (a refresh token and
    # the access tokens issued from its family). Introspection reads them in one BatchGetItem.
    partition_key="pk",
    ttl_attribute="expires_at",  # the revoked token's own end: past it the token is refused as expired
)

ALL_TABLES = (*ALL_TABLES, REVOCATIONS)
