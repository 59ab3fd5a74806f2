"""The composition root: settings and AWS clients in, ready use cases out. Nothing else builds adapters."""

from __future__ import annotations

from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.dynamodb import AgentTable, AuditTable, ReplayTable
from agent_auth.adapters.jwks_fetcher import HttpKeyFetcher
from agent_auth.adapters.kms import KmsPublicKeys, KmsSigner
from agent_auth.clock import Clock, SystemClock
from agent_auth.config import Settings
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.client_credentials import ClientCredentialsGrant
from agent_auth.oauth.client_endpoint import ClientEndpoint
from agent_auth.oauth.grants import GrantRegistry
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.ports import Signer

SUPPORTED_GRANT_TYPES = (ClientCredentialsGrant.grant_type,)
"""What discovery advertises; a test holds it equal to what grant_registry builds."""


def grant_registry(settings: Settings, signer: Signer) -> GrantRegistry:
    return GrantRegistry(
        ClientCredentialsGrant(issuer=settings.issuer, signer=signer, lifetime=settings.token_lifetime),
    )


def token_endpoint(
    settings: Settings, clients: AwsClients, clock: Clock | None = None, signer: Signer | None = None
) -> ClientEndpoint:
    clock = clock or SystemClock()
    signer = signer or KmsSigner(clients.kms, settings.signing_key_arn, settings.signing_alg)
    assertions = AssertionVerifier(
        # RFC 7523 §3 item 3: the issuer or the token endpoint identifies us as the audience.
        audiences=(settings.issuer, settings.token_endpoint),
        replay=ReplayTable(clients.dynamodb, settings.replay_table),
        keys=HttpKeyFetcher(),
        clock=clock,
    )
    return ClientEndpoint(
        operation=TokenOperation(grant_registry(settings, signer)),
        authenticator=ClientAuthenticator(AgentTable(clients.dynamodb, settings.agents_table), assertions),
        audit=AuditTable(clients.dynamodb, settings.audit_table, settings.audit_retention_days),
        clock=clock,
    )


def public_keys(settings: Settings, clients: AwsClients) -> KmsPublicKeys:
    arns = (settings.signing_key_arn, *settings.previous_signing_key_arns)
    return KmsPublicKeys(clients.kms, arns, settings.signing_alg)
