"""A token endpoint serving the exchange grant on fakes, with a compiled policy, for the exchange tests.

Agents: `front` receives users' tokens (delegation, consent remembered) and may exchange them for crm or
mail, one hop; `mailer` exchanges tokens of `front` for mail or files, up to two hops; `filer` exchanges
tokens of `mailer` for files, up to two hops; `outsider` receives users' tokens but is in nobody's
`exchange.from`; `plain` may not exchange at all. One trusted issuer signs with ES384 or RS256.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent_auth.adapters.records_codec import users_from_item
from agent_auth.audit import AuditRecord
from agent_auth.clock import FixedClock
from agent_auth.errors import OAuthError
from agent_auth.oauth import client_secrets, jose
from agent_auth.oauth.client_assertion import AssertionVerifier
from agent_auth.oauth.client_auth import ClientAuthenticator
from agent_auth.oauth.grant_types.registry import GrantTypeRegistry
from agent_auth.oauth.grant_types.token_exchange import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, TokenExchangeGrant
from agent_auth.oauth.operation import Outcome
from agent_auth.oauth.token_endpoint import TokenOperation
from agent_auth.oauth.tokens.issuer import Issuance, TokenIssuer
from agent_auth.policy.compiler import compile_policy, parse_policy
from agent_auth.records import Consent, UserDirectory
from agent_auth.web.client_endpoint import ClientEndpoint
from agent_auth.web.request import Request
from tests.unit.fakes import FakeAudit, FakeClients, FakeReplay, LocalSigner, NoKeys

ISSUER = "https://as.example.com"
IDP = "https://idp.example.com"
CRM, MAIL, FILES = "https://crm.example.com", "https://mail.example.com", "https://files.example.com"
NOW = 1_800_000_000
ALICE = "alice@example.com"
SECRET = client_secrets.generate_secret()
POLICY = f"""
version: 1
audiences:
  crm: {{uri: {CRM}, scopes: {{crm.read: Read, crm.write: Write}}}}
  mail: {{uri: {MAIL}, scopes: {{mail.read: Read, mail.send: Send}}}}
  files: {{uri: {FILES}, scopes: {{files.read: Read, files.write: Write}}}}
roles:
  crm-editor: [crm.read, crm.write]
  mail-user: [mail.read, mail.send]
  files-reader: [files.read]
users:
  alice@example.com: [crm-editor, mail-user, files-reader]
trusted_issuers:
  - issuer: {IDP}
    jwks_uri: {IDP}/jwks
    audience: agent-auth
    user_claim: email
    algorithms: [ES384, RS256]
agents:
  front:
    owner: o@example.com
    auth: client_secret_basic
    delegation:
      redirect_uris: [http://127.0.0.1/cb]
      scopes: [crm.read, crm.write, mail.read, files.read]
    exchange: {{audiences: [crm, mail], max_chain: 1}}
  mailer:
    owner: o@example.com
    auth: client_secret_basic
    delegation:
      redirect_uris: [http://127.0.0.1/cb]
      scopes: [mail.read, mail.send, files.read]
    exchange: {{audiences: [mail, files], from: [front], max_chain: 2}}
  filer:
    owner: o@example.com
    auth: client_secret_basic
    exchange: {{audiences: [files], from: [mailer], max_chain: 2}}
  outsider:
    owner: o@example.com
    auth: client_secret_basic
    delegation:
      redirect_uris: [http://127.0.0.1/cb]
      scopes: [crm.read]
  plain:
    owner: o@example.com
    auth: client_secret_basic
    delegation:
      redirect_uris: [http://127.0.0.1/cb]
      scopes: [crm.read]
"""


_SIGNER = LocalSigner()
_IDP_RSA = LocalSigner()
_IDP_EC = ec.generate_private_key(ec.SECP384R1())
"""Made once: generating RSA keys per test would cost most of the suite's time."""


def compiled_items(text: str = POLICY) -> tuple[list[dict[str, Any]], UserDirectory]:
    compiled = compile_policy(parse_policy("policy.yaml", text))
    items = [{**item, "secret_hash": client_secrets.hash_secret(SECRET)} for item in compiled.agents.values()]
    return items, users_from_item(compiled.users)


class Published:
    """Our own published keys (PublishedKeys), from the local signer."""

    def __init__(self, signer: LocalSigner) -> None:
        self.keys: list[dict[str, Any]] = []
        self.reads = 0
        self.publish(signer)

    def publish(self, signer: LocalSigner) -> None:
        der = signer.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.keys.append(jose.public_jwk_from_der(der, signer.alg, signer.kid))

    def jwks(self) -> dict[str, Any]:
        self.reads += 1
        return {"keys": list(self.keys)}


class Revocations:
    """A RevocationCheck that revokes the token ids it is given (the real store is the lifecycle's)."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()

    def is_revoked(self, claims: Mapping[str, Any], now: int) -> bool:
        return str(claims.get("jti")) in self.revoked


class Users:
    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory

    def get_users(self) -> UserDirectory:
        return self.directory


class Consents:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Consent] = {}

    def give(self, client_id: str, audience: str, *scopes: str, user: str = ALICE) -> None:
        self.items[(user, client_id)] = Consent(user, client_id, audience, scopes, NOW - 100)

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        return self.items.get((user.lower(), client_id))


class IdpKeys:
    """The trusted issuer: an ES384 key and an RS256 key, its JWKS, and the fetches made."""

    def __init__(self) -> None:
        self.ec_key = _IDP_EC
        self.rsa = _IDP_RSA
        self.fetches: list[bool] = []
        numbers = self.ec_key.public_key().public_numbers()
        der = self.rsa.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.keys = [
            {
                "kty": "EC",
                "crv": "P-384",
                "kid": "ec-1",
                "alg": "ES384",
                "x": jose.b64url_encode(numbers.x.to_bytes(48, "big")),
                "y": jose.b64url_encode(numbers.y.to_bytes(48, "big")),
            },
            {**jose.public_jwk_from_der(der, "RS256", "rsa-1")},
        ]

    def fetch_jwks(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        assert uri == f"{IDP}/jwks"
        self.fetches.append(refresh)
        return {"keys": list(self.keys)}

    def token(self, *, alg: str = "ES384", kid: str = "ec-1", **claims: Any) -> str:
        body: dict[str, Any] = {
            "iss": IDP,
            "aud": "agent-auth",
            "sub": "idp-user-1",
            "email": ALICE,
            "email_verified": True,
            "exp": NOW + 600,
            "iat": NOW - 5,
            "jti": base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True).encode()).decode()[:40] + kid,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key: Any = self.ec_key if alg.startswith("ES") else self.rsa.key
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


@dataclass
class Harness:
    signer: LocalSigner = field(default_factory=lambda: _SIGNER)
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    revocations: Revocations = field(default_factory=Revocations)
    consents: Consents = field(default_factory=Consents)
    idp: IdpKeys = field(default_factory=IdpKeys)
    audit: FakeAudit = field(default_factory=FakeAudit)
    replay: FakeReplay = field(default_factory=FakeReplay)
    policy: str = POLICY

    def __post_init__(self) -> None:
        items, directory = compiled_items(self.policy)
        self.agents = FakeClients(*items)
        self.users = Users(directory)
        self.issuer = TokenIssuer(issuer=ISSUER, signer=self.signer, lifetime=3600)
        self.published = Published(self.signer)
        self.consents.give("front", CRM, "crm.read", "crm.write")
        self.consents.give("outsider", CRM, "crm.read")
        self.consents.give("plain", CRM, "crm.read")
        self.grant = TokenExchangeGrant(
            self.issuer,
            issuer_url=ISSUER,
            own_keys=self.published,
            revocations=self.revocations,
            trusted_keys=self.idp,
            agents=self.agents,
            users=self.users,
            consents=self.consents,
            replay=self.replay,
            clock=self.clock,
        )
        verifier = AssertionVerifier(
            audiences=(ISSUER,), replay=FakeReplay(), keys=NoKeys(), clock=self.clock
        )
        self.endpoint = ClientEndpoint(
            operation=TokenOperation(GrantTypeRegistry(self.grant)),
            authenticator=ClientAuthenticator(self.agents, verifier),
            audit=self.audit,
            clock=self.clock,
        )

    def user_token(
        self,
        client_id: str = "front",
        *,
        audience: str = CRM,
        scopes: tuple[str, ...] = ("crm.read", "crm.write"),
        lifetime: int = 600,
        subject: str = ALICE,
        act: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A token as the code grant (or an exchange, with `act`) issues it, signed by us."""
        issuance = Issuance(subject, client_id, audience, scopes, act=act, extra=dict(extra or {}))
        issuer = TokenIssuer(issuer=ISSUER, signer=self.signer, lifetime=lifetime)
        return issuer.issue(issuance, int(self.clock.now())).token

    def post(self, client_id: str, params: Mapping[str, str | list[str]]) -> Outcome:
        pairs: list[tuple[str, str]] = [("grant_type", TOKEN_EXCHANGE)]
        for name, value in params.items():
            pairs += [(name, v) for v in ([value] if isinstance(value, str) else value)]
        auth = base64.b64encode(f"{client_id}:{SECRET}".encode()).decode()
        request = Request(
            method="POST",
            path="/token",
            headers={"content-type": "application/x-www-form-urlencoded", "authorization": f"Basic {auth}"},
            body=urlencode(pairs).encode(),
            source_ip="198.51.100.7",
            http_request_id=f"r-{len(self.audit.records)}",
        )
        return self.endpoint.handle(request)

    def exchange(self, client_id: str, subject_token: str, **params: str | list[str]) -> Outcome:
        params.setdefault("subject_token_type", ACCESS_TOKEN_TYPE)
        return self.post(client_id, {"subject_token": subject_token, **params})

    def refused(
        self, client_id: str, params: Mapping[str, str | list[str]]
    ) -> tuple[OAuthError, AuditRecord]:
        """The request fails: its error, and its one audit record; and nothing was signed."""
        before, signed = len(self.audit.records), self.signer.calls
        try:
            self.post(client_id, params)
        except OAuthError as error:
            records = self.audit.records[before:]
            assert len(records) == 1, records
            assert records[0].decision == "deny" and records[0].token_id is None
            assert self.signer.calls == signed, "a refused exchange signed something"
            return error, records[0]
        raise AssertionError("the exchange was not refused")


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(jose.b64url_decode(token.split(".")[1]))  # type: ignore[no-any-return]
