"""The composition root: settings and AWS clients in, ready use cases out. Nothing else builds adapters.

Each function imports only what its own use case needs at module level; the approval and email
modules are imported inside their builders, so the token handler's cold start never pays for them
(performance target 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.dynamodb import AgentTable, AuditTable, ReplayTable
from agent_auth.adapters.jit_tables import GrantTable, RequestTable
from agent_auth.adapters.jwks_fetcher import HttpKeyFetcher
from agent_auth.adapters.kms import KmsPublicKeys, KmsSigner
from agent_auth.clock import Clock, default_clock
from agent_auth.config import Settings
from agent_auth.oauth.access_request_grant import AccessRequestGrant
from agent_auth.oauth.access_requests import AccessRequestOperation
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.client_endpoint import ClientEndpoint, ClientOperation
from agent_auth.oauth.grants import GrantRegistry
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.ports import Signer

if TYPE_CHECKING:
    from agent_auth.approvals.notifier import Notifier
    from agent_auth.approvals.service import ApprovalService

SUPPORTED_GRANT_TYPES = (ClientCredentialsGrant.grant_type, AccessRequestGrant.grant_type)
"""What discovery advertises; a test holds it equal to what grant_registry builds."""


def requests_table(settings: Settings, clients: AwsClients) -> RequestTable:
    return RequestTable(clients.dynamodb, settings.requests_table, settings.grants_table)


def grant_registry(settings: Settings, signer: Signer, clients: AwsClients | None = None) -> GrantRegistry:
    clients = clients or AwsClients(settings.region)
    grants = GrantTable(clients.dynamodb, settings.grants_table)
    lifetime = settings.token_lifetime
    return GrantRegistry(
        ClientCredentialsGrant(issuer=settings.issuer, signer=signer, lifetime=lifetime, grants=grants),
        AccessRequestGrant(
            issuer=settings.issuer,
            signer=signer,
            lifetime=lifetime,
            requests=requests_table(settings, clients),
            grants=grants,
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
    return ClientEndpoint(
        operation=operation,
        authenticator=ClientAuthenticator(AgentTable(clients.dynamodb, settings.agents_table), assertions),
        audit=AuditTable(clients.dynamodb, settings.audit_table, settings.audit_retention_days),
        clock=clock,
    )


def token_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock | None = None, signer: Signer | None = None
) -> ClientEndpoint:
    signer = signer or KmsSigner(clients.kms, settings.signing_key_arn, settings.signing_alg)
    operation = TokenOperation(grant_registry(settings, signer, clients))
    return _client_endpoint(settings, clients, clock or default_clock(), operation)


def access_request_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock | None = None
) -> ClientEndpoint:
    operation = AccessRequestOperation(requests_table(settings, clients))
    return _client_endpoint(settings, clients, clock or default_clock(), operation)


def approval_service(settings: Settings, clients: AwsClients, clock: Clock | None = None) -> ApprovalService:
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.approvals.service import ApprovalService

    return ApprovalService(
        requests=requests_table(settings, clients),
        agents=AgentTable(clients.dynamodb, settings.agents_table),
        mac=KmsMac(clients.kms, settings.require("approval_key_arn")),
        audit=AuditTable(clients.dynamodb, settings.audit_table, settings.audit_retention_days),
        clock=clock or default_clock(),
    )


def notifier(settings: Settings, clients: AwsClients, clock: Clock | None = None) -> Notifier:
    from agent_auth.adapters.kms_mac import KmsMac
    from agent_auth.adapters.ses import SesMailer
    from agent_auth.approvals.notifier import Notifier

    return Notifier(
        issuer=settings.issuer,
        sender=settings.require("mail_from"),
        agents=AgentTable(clients.dynamodb, settings.agents_table),
        mac=KmsMac(clients.kms, settings.require("approval_key_arn")),
        mailer=SesMailer(clients.sesv2),
        audit=AuditTable(clients.dynamodb, settings.audit_table, settings.audit_retention_days),
        clock=clock or default_clock(),
    )


def public_keys(settings: Settings, clients: AwsClients) -> KmsPublicKeys:
    arns = (settings.signing_key_arn, *settings.previous_signing_key_arns)
    return KmsPublicKeys(clients.kms, arns, settings.signing_alg)
