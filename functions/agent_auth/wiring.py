"""The composition root: settings and AWS clients in, ready use cases out. Nothing else builds adapters.

Each function imports only what its own use case needs at module level; the approval and email
modules are imported inside their builders, so the token handler's cold start never pays for them
(performance target 3).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from agent_auth import outcome_metrics, schema
from agent_auth.adapters import audit_metrics
from agent_auth.adapters.audit_table import AuditTable
from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.delegation_tables import CodeTable, ConsentTable, RefreshTable
from agent_auth.adapters.dynamodb import AgentTable, DynamoTransaction, ReplayTable
from agent_auth.adapters.jit_tables import GrantTable, RequestTable
from agent_auth.adapters.jwks_fetcher import HttpKeyFetcher
from agent_auth.adapters.key_set_table import KeySetTable
from agent_auth.adapters.kms import KmsPublicKeys, KmsSigner, RotatingKmsSigner
from agent_auth.adapters.throttle import ThrottleTable
from agent_auth.clock import Clock, default_clock
from agent_auth.config import Settings
from agent_auth.grant_catalog import GRANT_TYPES
from agent_auth.jit.grants import JitGrants
from agent_auth.jit.polling import AccessRequestGrant
from agent_auth.jit.requests import AccessRequestOperation
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.grant_types.authorization_code import AuthorizationCodeGrant
from agent_auth.oauth.grant_types.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.grant_types.refresh_token import RefreshTokenGrant
from agent_auth.oauth.grant_types.registry import GrantType, GrantTypeRegistry
from agent_auth.oauth.grant_types.token_exchange import TokenExchangeGrant
from agent_auth.oauth.jose import kid_for_key
from agent_auth.oauth.operation import ClientOperation
from agent_auth.oauth.throttle import FailureThrottle, ThrottleLimits
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.ports import AuditLog, Signer
from agent_auth.signing_keys import CachedKeySet, KeySet
from agent_auth.web.client_endpoint import ClientEndpoint

if TYPE_CHECKING:
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.adapters.revocations import RevocationLookup, RevocationTable
    from agent_auth.jit.approval import ApprovalService
    from agent_auth.jit.notifier import Notifier
    from agent_auth.oauth.authorize.flow import AuthorizationFlow
    from agent_auth.operations.keys import KeyDeployment, KeyTarget
    from agent_auth.operations.target import Target

T = TypeVar("T")


def from_environment(build: Callable[[Settings, AwsClients], T]) -> Callable[[], T]:
    """A builder that reads the function's settings and makes its AWS clients when first called."""

    def built() -> T:
        settings = Settings.from_env()
        return build(settings, AwsClients(settings.region))

    return built


def _metrics() -> audit_metrics.Emit | None:
    """Where counts go on Lambda (the stack names a metrics namespace); None elsewhere: the development
    server, the CLI and the tests print no metrics."""
    namespace = os.environ.get(outcome_metrics.NAMESPACE_ENV)
    return audit_metrics.emf_emitter(namespace) if namespace else None


def audit_log(settings: Settings, clients: AwsClients) -> AuditLog:
    """The audit table, counted per outcome as each record is written (adapters.audit_metrics), so no
    handler emits metrics of its own."""
    table = AuditTable(clients.dynamodb, settings.audit_table, settings.audit_retention_days)
    emit = _metrics()
    if emit is None:
        return table
    return audit_metrics.MeteredAuditLog(table, emit, (g.grant_type for g in GRANT_TYPES))


def _counted_signer(signer: Signer) -> Signer:
    emit = _metrics()
    return signer if emit is None else audit_metrics.CountedSigner(signer, emit)


def _counted_mac(mac: KmsMac) -> KmsMac | audit_metrics.CountedMac:
    emit = _metrics()
    return mac if emit is None else audit_metrics.CountedMac(mac, emit)


def grant_type_registry(
    settings: Settings, signer: Signer, clients: AwsClients | None = None, clock: Clock | None = None
) -> GrantTypeRegistry:
    clients = clients or AwsClients(settings.region)
    issuer = TokenIssuer(issuer=settings.issuer, signer=signer, lifetime=settings.token_lifetime)
    grants = GrantTable(clients.dynamodb, settings.grants_table)
    requests = RequestTable(clients.dynamodb, settings.requests_table)
    codes = CodeTable(clients.dynamodb, settings.codes_table)
    refresh = RefreshTable(clients.dynamodb, settings.refresh_table)
    consents = ConsentTable(clients.dynamodb, settings.consents_table)
    transaction = DynamoTransaction(clients.dynamodb)
    builders: dict[type, Callable[[], GrantType]] = {
        ClientCredentialsGrant: lambda: ClientCredentialsGrant(issuer, JitGrants(grants)),
        AccessRequestGrant: lambda: AccessRequestGrant(
            issuer, requests, grants, AgentTable(clients.dynamodb, settings.agents_table)
        ),
        AuthorizationCodeGrant: lambda: AuthorizationCodeGrant(
            issuer, codes=codes, refresh=refresh, transaction=transaction
        ),
        RefreshTokenGrant: lambda: RefreshTokenGrant(
            issuer,
            refresh=refresh,
            consents=consents,
            transaction=transaction,
            revocations=revocation_table(settings, clients),
        ),
        TokenExchangeGrant: lambda: token_exchange_grant(settings, clients, issuer, clock),
    }
    # One builder per entry of the catalog: a grant type added there and not here fails at startup.
    return GrantTypeRegistry(*(builders[grant_type]() for grant_type in GRANT_TYPES))


def token_exchange_grant(
    settings: Settings, clients: AwsClients, issuer: TokenIssuer, clock: Clock | None = None
) -> TokenExchangeGrant:
    """On-behalf-of (RFC 8693). A subject token is refused when revoked, of a revoked family or JIT grant,
    or of a disabled agent anywhere in its chain (the lifecycle's RevocationLookup), and when its agent no
    longer exists."""
    from agent_auth.adapters.jwks_http import HttpsJwksFetcher, PublishedJwks

    agents = AgentTable(clients.dynamodb, settings.agents_table)
    fetcher = HttpsJwksFetcher()
    return TokenExchangeGrant(
        issuer,
        issuer_url=settings.issuer,
        own_keys=PublishedJwks(settings.issuer, fetcher),
        revocations=revocation_lookup(settings, clients),
        trusted_keys=fetcher,
        agents=agents,
        users=agents,
        consents=ConsentTable(clients.dynamodb, settings.consents_table),
        replay=ReplayTable(clients.dynamodb, settings.replay_table),
        clock=clock or default_clock(),
    )


def failure_throttle(
    settings: Settings, clients: AwsClients, agents: AgentTable, clock: Clock
) -> FailureThrottle:
    return FailureThrottle(
        ThrottleTable(clients.dynamodb, settings.require("throttle_table"), agents),
        clock,
        ThrottleLimits(
            agent_failures=settings.auth_failures_per_agent,
            source_failures=settings.auth_failures_per_source,
            window=settings.auth_failure_window,
        ),
    )


def _client_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock, operation: ClientOperation
) -> ClientEndpoint:
    assertions = AssertionVerifier(
        # RFC 7523 §3 item 3: the issuer or the token endpoint identifies us as the audience.
        audiences=(settings.issuer, settings.token_endpoint),
        replay=ReplayTable(clients.dynamodb, settings.replay_table),
        keys=HttpKeyFetcher(),
        clock=clock,
    )
    agents = AgentTable(clients.dynamodb, settings.agents_table)
    throttle = failure_throttle(settings, clients, agents, clock)
    return ClientEndpoint(
        operation=operation,
        authenticator=ClientAuthenticator(agents, assertions, throttle, clock),
        audit=audit_log(settings, clients),
        clock=clock,
    )


def token_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock | None = None, signer: Signer | None = None
) -> ClientEndpoint:
    clock = clock or default_clock()
    signer = signer or _counted_signer(token_signer(settings, clients, clock))
    operation = TokenOperation(grant_type_registry(settings, signer, clients, clock))
    return _client_endpoint(settings, clients, clock, operation)


def token_signer(settings: Settings, clients: AwsClients, clock: Clock) -> Signer:
    """SIGNING_KEY_ARN, or with rotation the key set's key of the moment (signing_keys.py)."""
    if not settings.signing_key_alias_prefix:
        return KmsSigner(clients.kms, settings.signing_key_arn, settings.signing_alg)
    # Read on the first token (inside the endpoint, so a failure is an audited 503), then once a minute.
    return RotatingKmsSigner(clients.kms, signing_key_set(settings, clients, clock).get, clock)


def signing_key_set(settings: Settings, clients: AwsClients, clock: Clock) -> CachedKeySet:
    initial = KeySet.initial(
        settings.signing_key_arn, settings.signing_alg, kid_for_key(settings.signing_key_arn)
    )
    return CachedKeySet(KeySetTable(clients.dynamodb, settings.agents_table), lambda: initial, clock)


def access_request_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock | None = None
) -> ClientEndpoint:
    operation = AccessRequestOperation(
        requests=RequestTable(clients.dynamodb, settings.requests_table),
        grants=GrantTable(clients.dynamodb, settings.grants_table),
        transaction=DynamoTransaction(clients.dynamodb),
    )
    return _client_endpoint(settings, clients, clock or default_clock(), operation)


def approval_service(settings: Settings, clients: AwsClients, clock: Clock | None = None) -> ApprovalService:
    from agent_auth.adapters.delegation_tables import SignInTable
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.jit.approval import ApprovalService, ThrottledLinks

    clock = clock or default_clock()
    agents = AgentTable(clients.dynamodb, settings.agents_table)
    return ApprovalService(
        requests=RequestTable(clients.dynamodb, settings.requests_table),
        grants=GrantTable(clients.dynamodb, settings.grants_table),
        agents=agents,
        mac=_counted_mac(KmsMac(clients.kms, settings.require("approval_key_arn"))),
        audit=audit_log(settings, clients),
        transaction=DynamoTransaction(clients.dynamodb),
        clock=clock,
        failed_links=ThrottledLinks(failure_throttle(settings, clients, agents, clock)),
        # Groups with `sign_in: true`: the approver's session (SignInTable.get_session, read only).
        sessions=SignInTable(clients.dynamodb, settings.signins_table),
    )


def notifier(settings: Settings, clients: AwsClients, clock: Clock | None = None) -> Notifier:
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.adapters.ses import SesMailer
    from agent_auth.jit.notifier import Notifier

    return Notifier(
        issuer=settings.issuer,
        sender=settings.require("mail_from"),
        agents=AgentTable(clients.dynamodb, settings.agents_table),
        mac=_counted_mac(KmsMac(clients.kms, settings.require("approval_key_arn"))),
        mailer=SesMailer(clients.sesv2),
        audit=audit_log(settings, clients),
        clock=clock or default_clock(),
    )


def public_keys(settings: Settings, clients: AwsClients, clock: Clock | None = None) -> KmsPublicKeys:
    previous = tuple((arn, settings.signing_alg) for arn in settings.previous_signing_key_arns)
    if not settings.signing_key_alias_prefix:
        return KmsPublicKeys.static(
            clients.kms, (settings.signing_key_arn, *settings.previous_signing_key_arns), settings.signing_alg
        )
    clock = clock or default_clock()
    key_set = signing_key_set(settings, clients, clock)

    def published() -> tuple[tuple[str, str], ...]:
        return (*((k.key_arn, k.alg) for k in key_set.get().published(clock.now())), *previous)

    return KmsPublicKeys(clients.kms, published)


def key_operator_target(
    *,
    name: str,
    clients: AwsClients,
    agents_table: str,
    audit_table: str,
    operator: str,
    clock: Clock,
    deployment: KeyDeployment,
) -> KeyTarget:
    """The target of `agent-auth keys`: the key set item, KMS, the audit trail. Not in any bundle's path."""
    from agent_auth.adapters.kms import KmsKeyAdmin
    from agent_auth.operations.keys import KeyTarget

    return KeyTarget(
        name=name,
        keys=KeySetTable(clients.dynamodb, agents_table),
        kms=KmsKeyAdmin(clients.kms),
        audit=AuditTable(clients.dynamodb, audit_table),
        operator=operator,
        clock=clock,
        deployment=deployment,
    )


def operator_target(
    *,
    name: str,
    dynamodb: object,
    table_names: Callable[[schema.TableSpec], str],
    operator: str,
    issuer: str,
    clock: Clock,
) -> Target:
    """The DynamoDB-backed target of operator commands; `table_names` maps each table spec to its
    deployed name (from settings or stack outputs). Not in any Lambda bundle's import path."""
    from agent_auth.adapters.revocations import AgentSwitch
    from agent_auth.operations.target import Target

    return Target(
        name=name,
        agents=AgentTable(dynamodb, table_names(schema.AGENTS)),
        audit=AuditTable(dynamodb, table_names(schema.AUDIT)),
        requests=RequestTable(dynamodb, table_names(schema.REQUESTS)),
        grants=GrantTable(dynamodb, table_names(schema.GRANTS)),
        consents=ConsentTable(dynamodb, table_names(schema.CONSENTS)),
        transaction=DynamoTransaction(dynamodb),
        operator=operator,
        issuer=issuer,
        clock=clock,
        switch=AgentSwitch(dynamodb, table_names(schema.AGENTS)),
    )


def _upstream_client_secret(settings: Settings, clients: AwsClients) -> str:
    """From Secrets Manager when the stack names a secret; else the development server's own value."""
    if settings.upstream_client_secret_arn:
        from agent_auth.adapters.secrets import SecretString

        return SecretString(clients.secretsmanager, settings.upstream_client_secret_arn).value()
    return settings.require("upstream_client_secret")


def authorization_flow(
    settings: Settings, clients: AwsClients, clock: Clock | None = None
) -> AuthorizationFlow:
    from agent_auth.adapters.delegation_tables import SignInTable
    from agent_auth.adapters.http_client import UrllibHttpClient
    from agent_auth.oauth.authorize.flow import AuthorizationFlow
    from agent_auth.oauth.upstream.relying_party import RelyingParty, UpstreamConfig

    clock = clock or default_clock()
    sign_ins = SignInTable(clients.dynamodb, settings.signins_table)
    agents = AgentTable(clients.dynamodb, settings.agents_table)
    upstream = RelyingParty(
        UpstreamConfig(
            issuer=settings.require("upstream_issuer"),
            client_id=settings.require("upstream_client_id"),
            client_secret=_upstream_client_secret(settings, clients),
            redirect_uri=f"{settings.issuer}/authorize/callback",
            groups_claim=settings.upstream_groups_claim,
        ),
        UrllibHttpClient(),
        clock,
    )
    return AuthorizationFlow(
        issuer=settings.issuer,
        agents=agents,
        users=agents,
        sign_ins=sign_ins,
        sessions=sign_ins,
        consents=ConsentTable(clients.dynamodb, settings.consents_table),
        codes=CodeTable(clients.dynamodb, settings.codes_table),
        transaction=DynamoTransaction(clients.dynamodb),
        upstream=upstream,
        audit=audit_log(settings, clients),
        clock=clock,
    )


# --- Token lifecycle: introspection, revocation, the kill switch -----------------------------------------


def revocation_table(settings: Settings, clients: AwsClients) -> RevocationTable:
    from agent_auth.adapters.revocations import RevocationTable

    return RevocationTable(clients.dynamodb, settings.require("revocations_table"))


def revocation_lookup(settings: Settings, clients: AwsClients) -> RevocationLookup:
    """The validator's RevocationCheck (token exchange) and introspection's status reader: one read."""
    from agent_auth.adapters.revocations import RevocationLookup

    return RevocationLookup(
        clients.dynamodb,
        revocations=settings.require("revocations_table"),
        agents=settings.agents_table,
        grants=settings.grants_table,
    )


@dataclass(frozen=True)
class LifecycleEndpoints:
    """POST /introspect and POST /revoke: one function, one set of AWS clients, one key cache."""

    introspection: ClientEndpoint
    revocation: ClientEndpoint


def lifecycle_endpoints(
    settings: Settings, clients: AwsClients, clock: Clock | None = None
) -> LifecycleEndpoints:
    from agent_auth.oauth.lifecycle.introspection import IntrospectionOperation
    from agent_auth.oauth.lifecycle.revocation import RevocationOperation
    from agent_auth.oauth.tokens.validator import AccessTokenValidator

    clock = clock or default_clock()
    # Signature, issuer, typ and expiry only: each operation reads what revoked a token itself.
    # The keys as the well-known function publishes them (with rotation, the key set item read through its
    # one-minute cache, then each key's public half from KMS), on the same clock as the validator's refresh.
    keys = public_keys(settings, clients, clock)
    validator = AccessTokenValidator(issuer=settings.issuer, keys=keys, clock=clock)
    introspection = IntrospectionOperation(validator=validator, status=revocation_lookup(settings, clients))
    revocation = RevocationOperation(
        validator=validator,
        refresh=RefreshTable(clients.dynamodb, settings.refresh_table),
        revocations=revocation_table(settings, clients),
        transaction=DynamoTransaction(clients.dynamodb),
    )
    return LifecycleEndpoints(
        introspection=_client_endpoint(settings, clients, clock, introspection),
        revocation=_client_endpoint(settings, clients, clock, revocation),
    )
