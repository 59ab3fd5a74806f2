"""The authorization code and refresh token grant types, with in-memory stores (RFC 6749 §4.1.3, §6;
RFC 7636 §4.6; RFC 9700 §4.14)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from agent_auth.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from agent_auth.oauth.authorize.pkce import challenge_for
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.grant_types.authorization_code import AuthorizationCodeGrant
from agent_auth.oauth.grant_types.refresh_token import RefreshTokenGrant
from agent_auth.oauth.grant_types.registry import TokenContext
from agent_auth.oauth.params import Form
from agent_auth.oauth.tokens import opaque
from agent_auth.oauth.tokens.issuer import TokenIssuer
from agent_auth.ports import Write
from agent_auth.records import Agent, AuthorizationCode, Consent, Delegation, RefreshFamily
from tests.unit.fakes import LocalSigner

NOW = 1_800_000_000
VERIFIER = "v" * 43
REDIRECT = "http://127.0.0.1:8765/callback"
CRM = "https://crm.example.com"
AGENT = Agent(
    client_id="mcp-client",
    owner="owner@example.com",
    auth_method="none",
    audiences={"crm": CRM},
    delegation=Delegation(
        redirect_uris=(REDIRECT,), scopes=("crm.read", "crm.write"), scope_audiences={"crm.read": "crm"}
    ),
)


class Transaction:
    def commit(self, writes: Sequence[Write]) -> bool:
        return all(write.operation() for write in writes)


class Codes:
    def __init__(self) -> None:
        self.items: dict[str, AuthorizationCode] = {}
        self.lock = threading.Lock()

    def add(self, code: str, **overrides: Any) -> AuthorizationCode:
        fields: dict[str, Any] = {
            "code_hash": opaque.digest(code),
            "client_id": "mcp-client",
            "redirect_uri": REDIRECT,
            "code_challenge": challenge_for(VERIFIER),
            "audience": CRM,
            "scopes": ("openid", "offline_access", "crm.read"),
            "user": "alice@example.com",
            "created_at": NOW,
            "expires_at": NOW + 60,
            "family_id": opaque.new_family_id(),
            "nonce": "n-1",
        }
        item = AuthorizationCode(**{**fields, **overrides})
        self.items[item.code_hash] = item
        return item

    def put_code(self, code: AuthorizationCode) -> Write:
        return Write(lambda: self.items.setdefault(code.code_hash, code) is code)

    def redeem_code(self, code_hash: str, now: int) -> AuthorizationCode | None:
        with self.lock:
            item = self.items.get(code_hash)
            if item is None or item.redeemed or now >= item.expires_at:
                return None
            self.items[code_hash] = replace(item, redeemed=True)
            return self.items[code_hash]

    def get_code(self, code_hash: str) -> AuthorizationCode | None:
        return self.items.get(code_hash)


class Refresh:
    def __init__(self) -> None:
        self.families: dict[str, RefreshFamily] = {}
        self.lock = threading.Lock()

    def put_family(self, family: RefreshFamily) -> Write:
        return Write(lambda: self.families.setdefault(family.family_id, family) is family)

    def get_family(self, family_id: str) -> RefreshFamily | None:
        return self.families.get(family_id)

    def rotate(self, family_id: str, presented_hash: str, new_hash: str, now: int) -> bool:
        with self.lock:
            family = self.families.get(family_id)
            if family is None or family.revoked or family.current_hash != presented_hash:
                return False
            self.families[family_id] = replace(
                family, current_hash=new_hash, generation=family.generation + 1
            )
            return True

    def revoke_family(self, family_id: str, now: int) -> Write:
        def revoke() -> bool:
            if family_id in self.families:
                self.families[family_id] = replace(self.families[family_id], revoked=True)
            return True

        return Write(revoke)


class Consents:
    def __init__(self, *consents: Consent) -> None:
        self.items = {(c.user, c.client_id): c for c in consents}

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        return self.items.get((user, client_id))

    def put_consent(self, consent: Consent) -> Write:
        raise NotImplementedError

    def list_consents(self, user: str | None = None) -> list[Consent]:
        return list(self.items.values())

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write:
        raise NotImplementedError


ISSUER = TokenIssuer(issuer="https://auth.example.com", signer=LocalSigner(), lifetime=900)


def consent(**overrides: Any) -> Consent:
    return Consent(
        **{
            "user": "alice@example.com",
            "client_id": "mcp-client",
            "audience": CRM,
            "scopes": ("crm.read",),
            "granted_at": NOW,
            **overrides,
        }
    )


def context(agent: Agent = AGENT, now: int = NOW, **fields: str) -> TokenContext:
    return TokenContext(
        client=AuthenticatedClient(agent.client_id, "none", agent),
        form=Form({k: [v] for k, v in fields.items()}),
        now=now,
    )


def code_grant(codes: Codes, refresh: Refresh) -> AuthorizationCodeGrant:
    return AuthorizationCodeGrant(ISSUER, codes=codes, refresh=refresh, transaction=Transaction())


class Revocations:
    """The revocations table: the families whose access tokens introspection and exchange refuse."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, int]] = {}

    def revoke_family(self, family_id: str, client_id: str, expires_at: int, now: int) -> Write:
        return Write(lambda: self.families.setdefault(family_id, (client_id, expires_at)) is not None)


def refresh_grant(
    refresh: Refresh, consents: Consents | None = None, revocations: Revocations | None = None
) -> RefreshTokenGrant:
    return RefreshTokenGrant(
        ISSUER,
        refresh=refresh,
        consents=consents or Consents(consent()),
        transaction=Transaction(),
        revocations=revocations or Revocations(),
    )


def redeem(grant: AuthorizationCodeGrant, code: str, **fields: str) -> dict[str, object]:
    ctx = context(**{"code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER, **fields})
    return grant.issue(ctx, grant.validate(ctx)).response()


def test_a_code_gives_an_access_token_for_the_user_an_id_token_and_a_refresh_token() -> None:
    codes, refresh = Codes(), Refresh()
    stored = codes.add(code := opaque.new_code())
    response = redeem(code_grant(codes, refresh), code)
    assert response["scope"] == "openid offline_access crm.read"
    assert str(response["refresh_token"]).startswith(f"rt_{stored.family_id}.")
    assert refresh.families[stored.family_id].user == "alice@example.com"
    assert "id_token" in response


def test_a_second_redemption_fails_and_revokes_what_the_first_produced() -> None:
    codes, refresh = Codes(), Refresh()
    stored = codes.add(code := opaque.new_code())
    grant = code_grant(codes, refresh)
    redeem(grant, code)
    with pytest.raises(InvalidGrant) as refused:
        redeem(grant, code)
    assert refused.value.reason == "code_reused_family_revoked"
    assert refresh.families[stored.family_id].revoked


def test_concurrent_redemptions_have_exactly_one_winner() -> None:
    codes, refresh = Codes(), Refresh()
    codes.add(code := opaque.new_code())
    grant, results = code_grant(codes, refresh), []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        barrier.wait()
        try:
            results.append(redeem(grant, code))
        except InvalidGrant as error:
            results.append(error.reason)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(r, dict) for r in results) == 1


@pytest.mark.parametrize(
    ("overrides", "fields", "reason"),
    [
        ({"client_id": "other-agent"}, {}, "code_of_another_client"),
        ({}, {"redirect_uri": "http://127.0.0.1:8765/other"}, "redirect_uri_mismatch"),
        ({}, {"code_verifier": "w" * 43}, "pkce_verifier_mismatch"),
        ({"expires_at": NOW}, {}, "unknown_or_expired_code"),
    ],
)
def test_a_code_is_bound_to_its_client_redirect_uri_challenge_and_time(
    overrides: dict[str, Any], fields: dict[str, str], reason: str
) -> None:
    codes = Codes()
    codes.add(code := opaque.new_code(), **overrides)
    with pytest.raises(InvalidGrant) as refused:
        redeem(code_grant(codes, Refresh()), code, **fields)
    assert refused.value.reason == reason


def test_a_missing_verifier_is_invalid_request() -> None:
    codes = Codes()
    codes.add(code := opaque.new_code())
    ctx = context(code=code, redirect_uri=REDIRECT)
    with pytest.raises(InvalidRequest):
        code_grant(codes, Refresh()).validate(ctx)


def test_without_offline_access_there_is_no_refresh_token() -> None:
    codes, refresh = Codes(), Refresh()
    codes.add(code := opaque.new_code(), scopes=("crm.read",))
    response = redeem(code_grant(codes, refresh), code)
    assert "refresh_token" not in response and "id_token" not in response and refresh.families == {}


def test_an_agent_whose_delegation_forbids_offline_access_gets_no_refresh_token() -> None:
    agent = replace(AGENT, delegation=replace(AGENT.delegation, offline_access=False))  # type: ignore[arg-type]
    codes = Codes()
    codes.add(code := opaque.new_code())
    grant = code_grant(codes, Refresh())
    ctx = context(agent, code=code, redirect_uri=REDIRECT, code_verifier=VERIFIER)
    assert "refresh_token" not in grant.issue(ctx, grant.validate(ctx)).response()


def first_refresh_token(refresh: Refresh) -> str:
    codes = Codes()
    codes.add(code := opaque.new_code())
    return str(redeem(code_grant(codes, refresh), code)["refresh_token"])


def use(grant: RefreshTokenGrant, token: str, now: int = NOW, **fields: str) -> dict[str, object]:
    ctx = context(now=now, grant_type="refresh_token", refresh_token=token, **fields)
    return grant.issue(ctx, grant.validate(ctx)).response()


def test_refresh_rotates_and_the_old_token_revokes_the_family() -> None:
    refresh = Refresh()
    old = first_refresh_token(refresh)
    grant = refresh_grant(refresh)
    new = str(use(grant, old)["refresh_token"])
    assert new != old and str(use(grant, new)["refresh_token"])
    with pytest.raises(InvalidGrant) as refused:
        use(grant, old)
    assert refused.value.reason == "refresh_token_reused_family_revoked"
    assert all(f.revoked for f in refresh.families.values())


def test_a_reused_refresh_token_revokes_the_access_tokens_of_its_family_too() -> None:
    # Given a family whose token was rotated, and so an old one that may have been stolen
    refresh, revocations = Refresh(), Revocations()
    old = first_refresh_token(refresh)
    grant = refresh_grant(refresh, revocations=revocations)
    use(grant, old)
    # When the old one comes back
    with pytest.raises(InvalidGrant):
        use(grant, old)
    # Then the family is revoked where introspection and exchange look (RFC 9700 §4.14.2), kept as
    # long as the family's access tokens may live
    (family,) = refresh.families.values()
    assert revocations.families == {family.family_id: (family.client_id, family.expires_at)}


def test_concurrent_refreshes_have_exactly_one_winner() -> None:
    refresh = Refresh()
    token = first_refresh_token(refresh)
    grant, results = refresh_grant(refresh), []
    barrier = threading.Barrier(10)

    def attempt() -> None:
        barrier.wait()
        try:
            results.append(use(grant, token))
        except InvalidGrant as error:
            results.append(error.reason)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(r, dict) for r in results) == 1


def test_a_refresh_never_widens_scope_or_moves_audience() -> None:
    refresh = Refresh()
    grant = refresh_grant(refresh)
    with pytest.raises(InvalidScope):
        use(grant, first_refresh_token(refresh), scope="crm.read crm.write")
    with pytest.raises(InvalidTarget):
        use(grant, first_refresh_token(refresh), resource="https://billing.example.com")
    assert use(grant, first_refresh_token(refresh), scope="crm.read")["scope"] == "crm.read"


def test_withdrawn_consent_stops_refresh() -> None:
    refresh = Refresh()
    token = first_refresh_token(refresh)
    with pytest.raises(InvalidGrant) as refused:
        use(refresh_grant(refresh, Consents(consent(revoked=True))), token)
    assert refused.value.reason == "consent_withdrawn"


@pytest.mark.parametrize("token", ["rt_x.y", "garbage", "rt_" + "a" * 22 + "." + "b" * 43])
def test_malformed_or_unknown_refresh_tokens_are_invalid_grant(token: str) -> None:
    with pytest.raises(InvalidGrant):
        use(refresh_grant(Refresh()), token)


def test_a_family_of_another_agent_is_refused() -> None:
    refresh = Refresh()
    token = first_refresh_token(refresh)
    other = replace(AGENT, client_id="other-agent")
    grant = refresh_grant(refresh)
    ctx = context(other, grant_type="refresh_token", refresh_token=token)
    with pytest.raises(InvalidGrant, match="invalid"):
        grant.validate(ctx)


def test_a_consent_given_again_does_not_revive_an_ended_family() -> None:
    refresh = Refresh()
    token = first_refresh_token(refresh)
    regranted = Consents(consent(granted_at=NOW + 20, withdrawn_at=NOW + 10))  # withdrawn, given again
    with pytest.raises(InvalidGrant) as refused:
        use(refresh_grant(refresh, regranted), token, now=NOW + 30)
    assert refused.value.reason == "consent_withdrawn"


def test_consenting_again_keeps_other_families_alive() -> None:
    """The same user consenting again on another device (the mcp SDK sends prompt=consent) does not end
    the families of earlier sign-ins: only a withdrawal does."""
    refresh = Refresh()
    token = first_refresh_token(refresh)
    assert use(refresh_grant(refresh, Consents(consent(granted_at=NOW + 20))), token, now=NOW + 30)


def test_a_code_names_one_resource_at_the_token_endpoint_too() -> None:
    codes = Codes()
    codes.add(code := opaque.new_code())
    with pytest.raises(InvalidTarget):
        redeem(code_grant(codes, Refresh()), code, resource="https://billing.example.com")
    codes.add(other := opaque.new_code())
    assert redeem(code_grant(codes, Refresh()), other, resource="HTTPS://crm.example.com")["scope"]
