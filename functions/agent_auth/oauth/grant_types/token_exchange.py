"""The token exchange grant (RFC 8693): an agent trades a user's token for one it may use downstream.

The subject token is ours (an RFC 9068 access token, `...:access_token`) or a trusted issuer's JWT
(`...:jwt` or `...:id_token`); the type must say which, and it is checked against what the token is.
The new token keeps `sub` (the user), has `client_id` = the requesting agent and `act` = the requesting
agent with the subject token's `act` nested inside (§4.1), is for exactly one audience among the
agent's `exchange.audiences`, and is never wider or longer-lived than what stands behind it:

- scope: requested ∩ the target audience's scopes ∩ what the user's roles allow ∩ what the chain's
  origin allows (the user's consent to the agent that first received the user's token, within that
  consent's audience, and that agent's `delegation.scopes` elsewhere; for a trusted issuer's token, the
  first exchanging agent's `delegation.scopes`); within one audience, also ∩ the subject token's scope;
- `exp` ≤ the subject token's `exp`; the chain's depth ≤ `exchange.max_chain`; a `may_act` (§4.4) in
  the subject token names who may act.

Any doubt about the subject token is `invalid_request` (§2.2.2) and nothing is issued: the request never
falls back to the caller's own identity (Keycloak CVE-2026-9704). The subject token must have been issued
to the requesting agent or to an agent in its `exchange.from` (ZITADEL CVE-2026-56668), that agent must
still exist, and the token must not be revoked. Every path (our token or a trusted issuer's, with or
without an actor token) goes through the same chain, `may_act` and scope checks (Keycloak #52691).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from agent_auth import schema
from agent_auth.clock import Clock
from agent_auth.errors import AgentAuthError, InvalidRequest, InvalidTarget, UnauthorizedClient
from agent_auth.oauth.authorize.stores import UserDirectoryReader
from agent_auth.oauth.exchange_rules import (
    SUBJECT_INVALID,
    chain_of,
    extend_chain,
    latest_end,
    narrow_scope,
    nested_act,
)
from agent_auth.oauth.grant_types.registry import IssuingGrantType, TokenContext
from agent_auth.oauth.jwt_verifier import JwtRejected, unverified_parts
from agent_auth.oauth.params import Form
from agent_auth.oauth.scopes import check_resource, parse_scope
from agent_auth.oauth.tokens.access_token import ANCESTORS_CLAIM, MAX_ANCESTORS, ORIGIN_CLAIM
from agent_auth.oauth.tokens.issuer import Issuance, IssuedToken, TokenIssuer
from agent_auth.oauth.tokens.validator import (
    MAX_TOKEN_BYTES,
    AccessTokenClaims,
    AccessTokenValidator,
    PublishedKeys,
    RevocationCheck,
)
from agent_auth.oauth.trusted_issuers import ExternalSubject, TrustedIssuerVerifier
from agent_auth.ports import ClientReader, KeyFetcher, ReplayGuard
from agent_auth.records import Agent, Consent, ExchangeAudience, ExchangeRules, TrustedIssuer

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
EXTERNAL_TYPES = frozenset({JWT_TYPE, ID_TOKEN_TYPE})


class ConsentReader(Protocol):
    def get_consent(self, user: str, client_id: str) -> Consent | None:
        """The remembered consent; None when there is none or it was withdrawn."""
        ...


@dataclass(frozen=True)
class _Subject:
    """The subject token, verified, in the terms the rules need."""

    user: str
    expires_at: int
    chain: tuple[str, ...]
    origin_issuer: str
    origin_client: str
    claims: Mapping[str, Any]
    scopes: frozenset[str] | None = None
    """Ours only: its scope and audience (a trusted issuer's token has neither here)."""
    audience: str | None = None
    external: ExternalSubject | None = None


class TokenExchangeGrant(IssuingGrantType):
    grant_type: ClassVar[str] = TOKEN_EXCHANGE
    # ConsentTable.get_consent. AgentTable.get_client / get_users (the subject's and the origin's agents,
    # the users) and ReplayTable.remember_once (a trusted issuer's jti) use what every client endpoint
    # already holds for client authentication (GetItem on agents, PutItem on replay markers).
    # The revocation check (adapters.revocations.RevocationLookup) reads the subject token's revocation
    # records, its chain's agent items and its JIT grants in one BatchGetItem.
    table_access: ClassVar[Mapping[str, tuple[str, ...]]] = {
        schema.CONSENTS.logical_name: ("dynamodb:GetItem",),
        schema.REVOCATIONS.logical_name: ("dynamodb:BatchGetItem",),
        schema.AGENTS.logical_name: ("dynamodb:BatchGetItem",),
        schema.GRANTS.logical_name: ("dynamodb:BatchGetItem",),
    }

    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        issuer_url: str,
        own_keys: PublishedKeys,
        revocations: RevocationCheck | None,
        trusted_keys: KeyFetcher,
        agents: ClientReader,
        users: UserDirectoryReader,
        consents: ConsentReader,
        replay: ReplayGuard,
        clock: Clock,
    ) -> None:
        super().__init__(issuer)
        self._issuer_url = issuer_url
        self._own = AccessTokenValidator(
            issuer=issuer_url, keys=own_keys, clock=clock, revocations=revocations
        )
        self._trusted = TrustedIssuerVerifier(keys=trusted_keys, clock=clock)
        self._agents = agents
        self._users = users
        self._consents = consents
        self._replay = replay

    def validate(self, context: TokenContext) -> Issuance:
        form, agent, now = context.form, context.client.agent, context.now
        rules = agent.exchange
        if rules is None:
            raise UnauthorizedClient("The client may not exchange tokens", reason="exchange_not_allowed")
        subject_token, subject_type = _parameters(form)
        name, target = _target(form, rules)
        subject = self._subject(subject_token, subject_type, agent, rules, now)
        try:
            return self._validate_for(subject, context, rules, name, target)
        except AgentAuthError as refused:
            # The subject token verified: whom it acts for and its chain are facts, safe to audit.
            refused.user = subject.user
            refused.actor_chain = (agent.client_id, *subject.chain)
            raise

    def _validate_for(
        self,
        subject: _Subject,
        context: TokenContext,
        rules: ExchangeRules,
        name: str,
        target: ExchangeAudience,
    ) -> Issuance:
        form, agent, now = context.form, context.client.agent, context.now
        actor_token = form.get("actor_token")
        if actor_token is not None:
            self._check_actor(actor_token, str(form.get("actor_token_type")), agent, now)
        may_act = subject.claims.get("may_act")
        if may_act is not None and (not isinstance(may_act, dict) or may_act.get("sub") != agent.client_id):
            raise InvalidRequest(SUBJECT_INVALID, reason="may_act_names_another_agent")
        chain = extend_chain(agent.client_id, subject.chain, rules.max_chain)
        scopes = narrow_scope(parse_scope(form.get("scope")), self._ceiling(subject, agent, target))
        if subject.external is not None:
            self._remember_once(subject.external, now)
        origin = {"iss": subject.origin_issuer, "client_id": subject.origin_client}
        # What revokes the subject revokes this token too: its refresh family, and its id with those of
        # the tokens it came from (RevocationLookup reads them all in its one batch).
        own = AccessTokenClaims(subject.claims) if subject.external is None else None
        ancestors = [*own.ancestors, own.token_id] if own else []
        if len(ancestors) > MAX_ANCESTORS:  # beyond any max_chain the policy allows: fail closed
            raise InvalidRequest("The delegation chain is too long", reason="chain_too_deep")
        return Issuance(
            subject=subject.user,
            client_id=agent.client_id,
            audience=target.uri,
            scopes=scopes,
            not_after=latest_end(subject.expires_at),
            act=nested_act(chain),
            extra={ORIGIN_CLAIM: origin, **({ANCESTORS_CLAIM: ancestors} if ancestors else {})},
            user=subject.user,
            token_family=own.token_family if own else None,
            details={"exchange": _audited(subject, origin, name)},
        )

    def issue(self, context: TokenContext, issuance: Issuance) -> IssuedToken:
        """RFC 8693 §2.2.1: the response says what was issued; never a refresh token."""
        issued = super().issue(context, issuance)
        return replace(issued, extra_response={"issued_token_type": ACCESS_TOKEN_TYPE})

    # --- the subject token ----------------------------------------------------------------------------------

    def _subject(self, token: str, token_type: str, agent: Agent, rules: ExchangeRules, now: int) -> _Subject:
        if len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_too_large")
        try:
            _, unverified = unverified_parts(token, MAX_TOKEN_BYTES)
        except JwtRejected as rejected:
            raise InvalidRequest(SUBJECT_INVALID, reason=f"subject_token_{rejected.reason}") from rejected
        iss = unverified.get("iss")
        if iss == self._issuer_url:
            if token_type != ACCESS_TOKEN_TYPE:
                raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_type_mismatch")
            return self._own_subject(token, agent, rules, now)
        trusted = next((t for t in rules.trusted_issuers if t.issuer == iss), None)
        if trusted is None:
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_issuer_not_trusted")
        if token_type not in EXTERNAL_TYPES:
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_type_mismatch")
        return self._external_subject(token, trusted, agent)

    def _own_subject(self, token: str, agent: Agent, rules: ExchangeRules, now: int) -> _Subject:
        verified = self._validated(token, "subject", now)
        claims = verified.claims
        if "@" not in verified.subject:
            # A client-credentials token: the agent acting as itself, with no user to act for.
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_not_a_users")
        if verified.client_id != agent.client_id and verified.client_id not in rules.from_agents:
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_client_not_in_exchange_from")
        if self._agents.get_client(verified.client_id) is None:
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_client_removed")
        chain = chain_of(verified.act)
        origin = claims.get(ORIGIN_CLAIM)
        if origin is None and not chain:
            origin_issuer, origin_client = self._issuer_url, verified.client_id  # a delegated token
        elif (
            isinstance(origin, dict)
            and chain
            and isinstance(origin.get("iss"), str)
            and isinstance(origin.get("client_id"), str)
        ):
            origin_issuer, origin_client = origin["iss"], origin["client_id"]
        else:
            raise InvalidRequest(SUBJECT_INVALID, reason="malformed_origin")
        return _Subject(
            user=verified.subject,
            expires_at=verified.expires_at,
            chain=chain,
            origin_issuer=origin_issuer,
            origin_client=origin_client,
            claims=claims,
            scopes=frozenset(verified.scopes),
            audience=verified.audience,
        )

    def _external_subject(self, token: str, trusted: TrustedIssuer, agent: Agent) -> _Subject:
        try:
            external = self._trusted.verify(token, trusted, max_size=MAX_TOKEN_BYTES)
        except JwtRejected as rejected:
            raise InvalidRequest(SUBJECT_INVALID, reason=f"subject_token_{rejected.reason}") from rejected
        if "act" in external.claims:
            # A chain of another issuer's agents: nothing here can vouch for it.
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_foreign_act")
        return _Subject(
            user=external.user,
            expires_at=external.expires_at,
            chain=(),
            origin_issuer=trusted.issuer,
            origin_client=agent.client_id,
            claims=external.claims,
            external=external,
        )

    def _validated(self, token: str, which: str, now: int) -> AccessTokenClaims:
        try:
            # A key published since our keys were read (a rotation) is found by the validator itself, which
            # reads them again on an unknown kid at most once a minute, and forgets unpublished keys.
            verified = self._own.validate(token)
        except JwtRejected as rejected:
            raise InvalidRequest(SUBJECT_INVALID, reason=f"{which}_token_{rejected.reason}") from rejected
        if verified.expires_at <= now:
            # The validator allows a minute of skew; an exchanged token would have no life left at all.
            raise InvalidRequest(SUBJECT_INVALID, reason=f"{which}_token_expired")
        return verified

    def _check_actor(self, token: str, token_type: str, agent: Agent, now: int) -> None:
        """RFC 8693 §2.1 `actor_token`: it may only prove the requesting agent itself (a token it got with
        client credentials), never bring in another party."""
        if token_type != ACCESS_TOKEN_TYPE or len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
            raise InvalidRequest(SUBJECT_INVALID, reason="actor_token_type_unsupported")
        verified = self._validated(token, "actor", now)
        if verified.subject != agent.client_id or verified.client_id != agent.client_id or verified.act:
            raise InvalidRequest(SUBJECT_INVALID, reason="actor_token_of_another_party")

    # --- scope ----------------------------------------------------------------------------------------------

    def _ceiling(self, subject: _Subject, agent: Agent, target: ExchangeAudience) -> frozenset[str]:
        ceiling = set(target.scopes) - agent.never
        ceiling &= self._users.get_users().scopes_for(subject.user)
        ceiling &= self._origin_allows(subject, agent)
        if subject.audience == target.uri and subject.scopes is not None:
            ceiling &= subject.scopes  # within one audience, never beyond the subject token
        return frozenset(ceiling)

    def _origin_allows(self, subject: _Subject, agent: Agent) -> set[str]:
        """What the agent at the start of the chain may hold for the user: its delegation scopes, and within
        the audience the user consented to, only what the user allowed."""
        origin = (
            agent
            if subject.origin_client == agent.client_id
            else self._agents.get_client(subject.origin_client)
        )
        if origin is None or origin.delegation is None:
            raise InvalidRequest(SUBJECT_INVALID, reason="origin_agent_removed_or_not_delegated")
        allowed = set(origin.delegation.scopes)
        if subject.origin_issuer != self._issuer_url or origin.delegation.consent != "remember":
            return allowed  # a trusted issuer's user, or consent asked every time: the delegation stands in
        consent = self._consents.get_consent(subject.user, origin.client_id)
        if consent is None:
            raise InvalidRequest(SUBJECT_INVALID, reason="consent_withdrawn")
        consented_audience = {
            s
            for s in allowed
            if origin.audiences.get(origin.delegation.scope_audiences.get(s, "")) == consent.audience
        }
        return (allowed - consented_audience) | (consented_audience & set(consent.scopes))

    def _remember_once(self, external: ExternalSubject, now: int) -> None:
        """RFC 7519 §4.1.7: a trusted issuer's token is exchanged once; a replay, even a concurrent one,
        loses the conditional write."""
        digest = hashlib.sha256(f"{external.issuer}\n{external.jti}".encode()).hexdigest()
        if not self._replay.remember_once(f"exchange#{digest}", external.expires_at, now):
            raise InvalidRequest(SUBJECT_INVALID, reason="subject_token_replayed")


def _parameters(form: Form) -> tuple[str, str]:
    """RFC 8693 §2.1: subject_token and its type are required; actor_token and its type go together."""
    subject_token, subject_type = form.get("subject_token"), form.get("subject_token_type")
    if subject_token is None or subject_type is None:
        raise InvalidRequest(
            "subject_token and subject_token_type are required", reason="missing_subject_token"
        )
    if subject_type not in EXTERNAL_TYPES | {ACCESS_TOKEN_TYPE}:
        raise InvalidRequest(
            "The subject_token_type is not supported", reason="unsupported_subject_token_type"
        )
    if ("actor_token" in form) != ("actor_token_type" in form):
        raise InvalidRequest(
            "actor_token and actor_token_type go together", reason="actor_token_without_type"
        )
    requested = form.get("requested_token_type")
    if requested is not None and requested != ACCESS_TOKEN_TYPE:
        raise InvalidRequest(
            "The requested_token_type is not supported", reason="unsupported_requested_token_type"
        )
    return subject_token, subject_type


def _target(form: Form, rules: ExchangeRules) -> tuple[str, ExchangeAudience]:
    """RFC 8693 §2.1: `resource` (a URI) and `audience` (a URI or the audience's name) may repeat on the
    wire, but a token names exactly one audience here: more than one target is invalid_target."""
    targets = {*form.get_all("resource"), *form.get_all("audience")}
    if len(targets) != 1:
        reason = "several_targets" if targets else "missing_target"
        raise InvalidTarget("Name exactly one resource or audience", reason=reason)
    (value,) = targets
    if value in rules.audiences:
        return value, rules.audiences[value]
    uri = check_resource(value)
    for name, audience in rules.audiences.items():
        if audience.uri == uri:
            return name, audience
    raise InvalidTarget("The resource is not allowed for this client", reason="exchange_target_not_allowed")


def _audited(subject: _Subject, origin: Mapping[str, str], target: str) -> dict[str, object]:
    """What the audit record keeps of the subject token: ids, never the token. Our token's jti and
    client; a trusted issuer's jti only as a hash (it is theirs, and may be guessable)."""
    details: dict[str, object] = {
        "subject_issuer": subject.origin_issuer if subject.external else str(subject.claims.get("iss")),
        "subject_expires_at": subject.expires_at,
        "origin": dict(origin),
        "target": target,
    }
    if subject.external is None:
        details["subject_token_id"] = str(subject.claims.get("jti"))
        details["subject_client"] = str(subject.claims.get("client_id"))
    else:
        details["subject_token_id"] = (
            "sha256:" + hashlib.sha256(subject.external.jti.encode()).hexdigest()[:16]
        )
    return details
