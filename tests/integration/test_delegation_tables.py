"""The DynamoDB adapters of delegated access, on moto: sign-ins and sessions, codes, refresh families,
consents, and the users directory `apply` writes. Expiry is checked in code on every read (TTL only
cleans up, days later); once-only changes have exactly one winner, also under a race."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.delegation_tables import CodeTable, ConsentTable, RefreshTable, SignInTable
from agent_auth.adapters.dynamodb import AgentTable, DynamoTransaction, from_item
from agent_auth.audit import AuditRecord
from agent_auth.config import Settings
from agent_auth.devserver.resources import create_resources
from agent_auth.errors import DependencyFailure
from agent_auth.oauth.authorize import stores
from agent_auth.operations import apply_policy
from agent_auth.policy.compiler import load_policy
from agent_auth.records import AuthorizationCode, Consent, RefreshFamily, SignIn, UserDirectory, UserSession
from tests.conftest import Deployment
from tests.support import policy_document, serialize_aws_calls, write_policy

NOW = 1_700_000_000
RACERS = 20
T = TypeVar("T")


@pytest.fixture
def settings(aws: AwsClients) -> Settings:
    return create_resources(aws.dynamodb, aws.kms, issuer="https://auth.example.com", region="us-east-1")


@pytest.fixture
def transaction(aws: AwsClients) -> DynamoTransaction:
    return DynamoTransaction(aws.dynamodb)


@pytest.fixture
def sign_ins(aws: AwsClients, settings: Settings) -> SignInTable:
    return SignInTable(aws.dynamodb, settings.signins_table)


@pytest.fixture
def codes(aws: AwsClients, settings: Settings) -> CodeTable:
    return CodeTable(aws.dynamodb, settings.codes_table)


@pytest.fixture
def refresh(aws: AwsClients, settings: Settings) -> RefreshTable:
    return RefreshTable(aws.dynamodb, settings.refresh_table)


@pytest.fixture
def consents(aws: AwsClients, settings: Settings) -> ConsentTable:
    return ConsentTable(aws.dynamodb, settings.consents_table)


def race(monkeypatch: pytest.MonkeyPatch, attempt: Callable[[int], T]) -> list[T]:
    """RACERS threads released at once; moto's backend is serialized as DynamoDB serializes one item."""
    serialize_aws_calls(monkeypatch)
    barrier = threading.Barrier(RACERS, timeout=30)

    def run(i: int) -> T:
        barrier.wait()
        return attempt(i)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return [f.result(timeout=60) for f in [pool.submit(run, i) for i in range(RACERS)]]


def stored(aws: AwsClients, table: str) -> list[dict[str, Any]]:
    """What is in the table, whatever the adapters say about it."""
    return [from_item(i) for i in aws.dynamodb.scan(TableName=table)["Items"]]


@pytest.mark.parametrize(
    ("port", "adapter"),
    [
        (stores.SignInStore, SignInTable),
        (stores.SessionStore, SignInTable),
        (stores.CodeStore, CodeTable),
        (stores.RefreshStore, RefreshTable),
        (stores.ConsentStore, ConsentTable),
        (stores.UserDirectoryReader, AgentTable),
    ],
    ids=lambda x: x.__name__,
)
def test_each_adapter_has_its_ports_methods_with_the_same_parameters(port: type, adapter: type) -> None:
    methods = [name for name in vars(port) if not name.startswith("_") and callable(getattr(port, name))]
    assert methods
    for name in methods:
        expected = inspect.signature(getattr(port, name))
        actual = inspect.signature(getattr(adapter, name))
        assert list(actual.parameters) == list(expected.parameters), name
        assert actual.return_annotation == expected.return_annotation, name


# --- sign-ins ---------------------------------------------------------------------------------------------


def a_sign_in(**changes: Any) -> SignIn:
    sign_in = SignIn(
        sign_in_id="s1",
        client_id="mcp-client",
        redirect_uri="http://127.0.0.1:8765/callback",
        scopes=("crm.contacts.read",),
        audience="https://crm.example.com",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        created_at=NOW,
        expires_at=NOW + 600,
        state="xyz",
        nonce="n-0S6_WzA2Mj",
        upstream_nonce="un",
        upstream_verifier="uv",
    )
    return replace(sign_in, **changes)


def test_a_sign_in_is_read_back_until_it_expires(
    sign_ins: SignInTable, aws: AwsClients, settings: Settings
) -> None:
    # Given a stored sign-in
    sign_in = a_sign_in()
    sign_ins.put_sign_in(sign_in)

    # Then it reads back whole until its expiry, and is gone in code from then on
    assert sign_ins.get_sign_in("s1", NOW + 599) == sign_in
    assert sign_ins.get_sign_in("s1", NOW + 600) is None
    assert sign_ins.get_sign_in("unknown", NOW) is None
    # Although TTL has not removed it yet, and TTL will (the item holds its expiry)
    [item] = stored(aws, settings.signins_table)
    assert item["pk"] == "signin#s1" and item["expires_at"] == NOW + 600


def test_a_sign_in_id_is_never_reused(sign_ins: SignInTable) -> None:
    sign_ins.put_sign_in(a_sign_in())
    with pytest.raises(DependencyFailure):
        sign_ins.put_sign_in(a_sign_in(client_id="other"))
    assert sign_ins.get_sign_in("s1", NOW) == a_sign_in()


def test_a_sign_in_completes_once(sign_ins: SignInTable) -> None:
    # Given a pending sign-in
    sign_ins.put_sign_in(a_sign_in())

    # When the upstream provider's callback completes it, and a replayed callback tries again
    assert sign_ins.complete_sign_in("s1", "alice@example.com", ("support", "staff"), NOW + 10)
    assert not sign_ins.complete_sign_in("s1", "mallory@example.com", (), NOW + 11)

    # Then the first user stays
    got = sign_ins.get_sign_in("s1", NOW + 12)
    assert got is not None and (got.user, got.groups) == ("alice@example.com", ("support", "staff"))


def test_an_expired_or_unknown_sign_in_cannot_complete(sign_ins: SignInTable) -> None:
    sign_ins.put_sign_in(a_sign_in())
    assert not sign_ins.complete_sign_in("s1", "alice@example.com", (), NOW + 600)
    assert not sign_ins.complete_sign_in("nope", "alice@example.com", (), NOW)
    assert sign_ins.get_sign_in("s1", NOW).user is None  # type: ignore[union-attr]


def test_racing_callbacks_complete_a_sign_in_exactly_once(
    sign_ins: SignInTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_ins.put_sign_in(a_sign_in())
    results = race(monkeypatch, lambda i: sign_ins.complete_sign_in("s1", f"u{i}@example.com", (), NOW + 1))
    assert results.count(True) == 1
    winner = results.index(True)
    assert sign_ins.get_sign_in("s1", NOW + 2).user == f"u{winner}@example.com"  # type: ignore[union-attr]


def test_consuming_a_sign_in_issues_its_code_once(
    sign_ins: SignInTable, codes: CodeTable, transaction: DynamoTransaction
) -> None:
    # Given a completed sign-in
    sign_ins.put_sign_in(a_sign_in())
    sign_ins.complete_sign_in("s1", "alice@example.com", (), NOW)

    # When the user allows, the sign-in ends in the same transaction that stores the code
    assert transaction.commit([sign_ins.consume_sign_in("s1", NOW + 5), codes.put_code(a_code())])
    assert sign_ins.get_sign_in("s1", NOW + 5) is None

    # Then a second decision (a double click) fails and stores no second code
    assert not transaction.commit([sign_ins.consume_sign_in("s1", NOW + 6), codes.put_code(a_code("h2"))])
    assert codes.get_code("h2") is None


def test_an_expired_sign_in_cannot_be_consumed(
    sign_ins: SignInTable, transaction: DynamoTransaction, aws: AwsClients, settings: Settings
) -> None:
    sign_ins.put_sign_in(a_sign_in())
    assert not transaction.commit([sign_ins.consume_sign_in("s1", NOW + 600)])
    assert not transaction.commit([sign_ins.consume_sign_in("unknown", NOW)])
    assert len(stored(aws, settings.signins_table)) == 1


# --- sessions ---------------------------------------------------------------------------------------------


def test_a_session_is_read_back_until_it_expires(sign_ins: SignInTable) -> None:
    session = UserSession("hash-1", "alice@example.com", ("support",), NOW, NOW + 3600)
    sign_ins.put_session(session)
    assert sign_ins.get_session("hash-1", NOW + 3599) == session
    assert sign_ins.get_session("hash-1", NOW + 3600) is None
    assert sign_ins.get_session("hash-2", NOW) is None
    # A session and a sign-in with the same id never meet: their keys differ by prefix
    assert sign_ins.get_sign_in("hash-1", NOW) is None
    with pytest.raises(DependencyFailure):
        sign_ins.put_session(replace(session, user="mallory@example.com"))


# --- authorization codes --------------------------------------------------------------------------------


def a_code(code_hash: str = "h1", **changes: Any) -> AuthorizationCode:
    code = AuthorizationCode(
        code_hash=code_hash,
        client_id="mcp-client",
        redirect_uri="http://127.0.0.1:8765/callback",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        audience="https://crm.example.com",
        scopes=("crm.contacts.read", "offline_access"),
        user="alice@example.com",
        created_at=NOW,
        expires_at=NOW + 60,
        family_id="f1",
        nonce="n",
        groups=("support",),
    )
    return replace(code, **changes)


def test_a_code_is_redeemed_once(codes: CodeTable, transaction: DynamoTransaction) -> None:
    # Given a stored code
    assert transaction.commit([codes.put_code(a_code())])
    assert codes.get_code("h1") == a_code()

    # When it is redeemed / Then the redemption returns it, marked redeemed
    assert codes.redeem_code("h1", NOW + 59) == a_code(redeemed=True)

    # And a second redemption gets nothing, while the stored code shows it was redeemed (reuse detection)
    assert codes.redeem_code("h1", NOW + 59) is None
    assert codes.get_code("h1") == a_code(redeemed=True)


def test_an_expired_code_is_not_redeemed_although_ttl_has_not_removed_it(
    codes: CodeTable, transaction: DynamoTransaction, aws: AwsClients, settings: Settings
) -> None:
    transaction.commit([codes.put_code(a_code())])
    assert codes.redeem_code("h1", NOW + 60) is None
    assert codes.redeem_code("unknown", NOW) is None
    # The item is still there, unredeemed, and TTL purges it a day after its expiry
    [item] = stored(aws, settings.codes_table)
    assert "redeemed" not in item and item["purge_at"] == NOW + 60 + 86400
    assert codes.get_code("h1") == a_code()


def test_a_code_hash_is_never_stored_twice(codes: CodeTable, transaction: DynamoTransaction) -> None:
    assert transaction.commit([codes.put_code(a_code())])
    assert not transaction.commit([codes.put_code(a_code(user="mallory@example.com"))])
    assert codes.get_code("h1") == a_code()


def test_racing_redemptions_of_one_code_have_exactly_one_winner(
    codes: CodeTable, transaction: DynamoTransaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    transaction.commit([codes.put_code(a_code())])
    results = race(monkeypatch, lambda _: codes.redeem_code("h1", NOW + 1))
    assert [r for r in results if r is not None] == [a_code(redeemed=True)]


# --- refresh families -----------------------------------------------------------------------------------


def a_family(**changes: Any) -> RefreshFamily:
    family = RefreshFamily(
        family_id="f1",
        client_id="mcp-client",
        user="alice@example.com",
        audience="https://crm.example.com",
        scopes=("crm.contacts.read", "offline_access"),
        current_hash="r0",
        generation=0,
        created_at=NOW,
        expires_at=NOW + 86400,
        groups=("support",),
    )
    return replace(family, **changes)


def test_a_refresh_token_rotates_and_the_old_one_no_longer_does(
    refresh: RefreshTable, transaction: DynamoTransaction
) -> None:
    # Given a family whose current token hashes to r0
    assert transaction.commit([refresh.put_family(a_family())])
    assert refresh.get_family("f1") == a_family()

    # When r0 is presented / Then it rotates to r1, one generation on
    assert refresh.rotate("f1", "r0", "r1", NOW + 10)
    assert refresh.get_family("f1") == a_family(current_hash="r1", generation=1)

    # And r0 presented again rotates nothing (the caller then revokes the family)
    assert not refresh.rotate("f1", "r0", "r2", NOW + 11)
    assert refresh.rotate("f1", "r1", "r2", NOW + 12)
    assert refresh.get_family("f1") == a_family(current_hash="r2", generation=2)


def test_an_expired_revoked_or_unknown_family_does_not_rotate(
    refresh: RefreshTable, transaction: DynamoTransaction
) -> None:
    transaction.commit([refresh.put_family(a_family())])
    assert not refresh.rotate("f1", "r0", "r1", NOW + 86400)
    assert not refresh.rotate("unknown", "r0", "r1", NOW)
    # get_family returns it as stored, expired or not: the caller compares the expiry
    assert refresh.get_family("f1") == a_family()

    assert transaction.commit([refresh.revoke_family("f1", NOW + 5)])
    assert not refresh.rotate("f1", "r0", "r1", NOW + 6)
    assert refresh.get_family("f1") == a_family(revoked=True)


def test_revoking_a_family_is_idempotent_and_needs_the_family(
    refresh: RefreshTable, transaction: DynamoTransaction, aws: AwsClients, settings: Settings
) -> None:
    transaction.commit([refresh.put_family(a_family())])
    assert transaction.commit([refresh.revoke_family("f1", NOW + 5)])
    assert transaction.commit([refresh.revoke_family("f1", NOW + 9)])
    [item] = stored(aws, settings.refresh_table)
    assert item["revoked"] is True and item["revoked_at"] == NOW + 5
    assert not transaction.commit([refresh.revoke_family("unknown", NOW)])
    assert not transaction.commit([refresh.put_family(a_family(user="mallory@example.com"))])


def test_racing_uses_of_one_refresh_token_have_exactly_one_winner(
    refresh: RefreshTable, transaction: DynamoTransaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    transaction.commit([refresh.put_family(a_family())])
    results = race(monkeypatch, lambda i: refresh.rotate("f1", "r0", f"new-{i}", NOW + 1))
    assert results.count(True) == 1
    assert refresh.get_family("f1") == a_family(current_hash=f"new-{results.index(True)}", generation=1)


# --- consents ---------------------------------------------------------------------------------------------


def a_consent(**changes: Any) -> Consent:
    consent = Consent(
        "alice@example.com", "mcp-client", "https://crm.example.com", ("crm.contacts.read",), NOW
    )
    return replace(consent, **changes)


def test_a_consent_is_remembered_per_user_and_agent(
    consents: ConsentTable, transaction: DynamoTransaction
) -> None:
    assert transaction.commit([consents.put_consent(a_consent())])
    assert consents.get_consent("alice@example.com", "mcp-client") == a_consent()
    # Addresses match without case, as in the users directory
    assert consents.get_consent("Alice@Example.com", "mcp-client") == a_consent()
    assert consents.get_consent("alice@example.com", "support-bot") is None
    assert consents.get_consent("bob@example.com", "mcp-client") is None

    # A new consent replaces the old one
    wider = a_consent(scopes=("crm.contacts.read", "crm.contacts.write"), granted_at=NOW + 5)
    assert transaction.commit([consents.put_consent(wider)])
    assert consents.get_consent("alice@example.com", "mcp-client") == wider


def test_a_revoked_consent_is_asked_again(consents: ConsentTable, transaction: DynamoTransaction) -> None:
    transaction.commit([consents.put_consent(a_consent())])
    assert transaction.commit([consents.revoke_consent("alice@example.com", "mcp-client", NOW + 1)])
    assert consents.get_consent("alice@example.com", "mcp-client") is None
    assert consents.list_consents("alice@example.com") == [a_consent(revoked=True, withdrawn_at=NOW + 1)]
    # Revoking what does not exist fails, so an operator's typo is reported
    assert not transaction.commit([consents.revoke_consent("alice@example.com", "nobody", NOW)])
    # Consenting again replaces the revoked consent, and remembers when it was withdrawn (the refresh
    # families that withdrawal ended stay ended)
    transaction.commit([consents.put_consent(a_consent(granted_at=NOW + 2))])
    assert consents.get_consent("alice@example.com", "mcp-client") == a_consent(
        granted_at=NOW + 2, withdrawn_at=NOW + 1
    )


def test_consents_are_listed_by_user_or_all(consents: ConsentTable, transaction: DynamoTransaction) -> None:
    mine = [a_consent(), a_consent(client_id="support-bot")]
    theirs = a_consent(user="bob@example.com")
    transaction.commit([consents.put_consent(c) for c in [*mine, theirs]])
    assert consents.list_consents("alice@example.com") == mine
    assert consents.list_consents("ALICE@example.com") == mine
    assert consents.list_consents("carol@example.com") == []
    assert consents.list_consents() == [*mine, theirs]


# --- the users directory, written by apply --------------------------------------------------------------


def test_apply_writes_the_users_directory_and_agent_delegation(deployment: Deployment) -> None:
    # Given the test policy applied (users by address and by group; a public agent with delegation)
    agents = deployment.target.agents
    assert isinstance(agents, AgentTable)

    # Then the users directory reads back compiled, and the agent item carries its delegation
    assert agents.get_users() == UserDirectory(
        by_email={"alice@example.com": frozenset({"crm.contacts.read", "crm.contacts.write"})},
        by_group={"support": frozenset({"crm.contacts.read"})},
    )
    public = agents.get_client("public-app")
    assert public is not None and public.delegation is not None
    assert public.delegation.scope_audiences == {"crm.contacts.read": "crm", "crm.contacts.write": "crm"}
    assert public.audiences == {"crm": "https://crm.example.com"}

    # When a new policy changes the users and drops the delegation
    document = policy_document(deployment.keys)
    document["users"] = {"group:support": ["crm-editor"]}
    del document["agents"]["public-app"]["delegation"]
    document["agents"]["public-app"]["auth"] = "client_secret_post"
    result = apply_policy(deployment.target, load_policy(str(write_policy(deployment.policy_file, document))))

    # Then the directory is replaced whole and the delegation is gone from the item
    assert result.applied and "users" in result.plan.sections_changed
    assert agents.get_users() == UserDirectory(
        by_group={"support": frozenset({"crm.contacts.read", "crm.contacts.write"})}
    )
    assert agents.get_client("public-app").delegation is None  # type: ignore[union-attr]


def test_no_users_directory_before_any_apply(aws: AwsClients, settings: Settings) -> None:
    assert AgentTable(aws.dynamodb, settings.agents_table).get_users() == UserDirectory()


def test_the_users_directory_is_written_in_the_apply_transaction(deployment: Deployment) -> None:
    # Given an apply planned against a policy someone else has since replaced
    agents = deployment.target.agents
    assert isinstance(agents, AgentTable)
    before = agents.get_users()
    record = AuditRecord(action="policy.apply", decision="allow", at=NOW, operator="tester")
    applied = agents.apply(
        {},
        removed=[],
        groups={},
        removed_groups=[],
        users={"by_email": {"mallory@example.com": ["crm.contacts.write"]}, "by_group": {}},
        policy={"document": {}, "digest": "new"},
        previous_digest="not-the-applied-digest",
        audit=deployment.target.audit.entry(record),
    )

    # Then nothing is written, the users directory included
    assert applied is False
    assert agents.get_users() == before


def test_apply_rewrites_items_an_older_release_compiled(deployment: Deployment) -> None:
    # Given items written by an older release: no format on the policy item, no delegation on the agent,
    # no users directory
    agents = deployment.target.agents
    assert isinstance(agents, AgentTable)
    client, table = deployment.clients.dynamodb, deployment.settings.agents_table
    client.update_item(
        TableName=table,
        Key={"pk": {"S": "policy#current"}},
        UpdateExpression="REMOVE #f",
        ExpressionAttributeNames={"#f": "format"},
    )
    client.update_item(
        TableName=table, Key={"pk": {"S": "agent#public-app"}}, UpdateExpression="REMOVE delegation"
    )
    client.delete_item(TableName=table, Key={"pk": {"S": "users#current"}})

    # When the same policy is applied again
    result = apply_policy(deployment.target, load_policy(str(deployment.policy_file)))

    # Then the plan says why, and the items are complete again
    assert result.applied and result.plan.items_outdated
    assert any("older agent-auth" in line for line in result.plan.lines())
    assert agents.get_client("public-app").delegation is not None  # type: ignore[union-attr]
    assert agents.get_users().by_group == {"support": frozenset({"crm.contacts.read"})}
    # And applying once more changes nothing
    assert apply_policy(deployment.target, load_policy(str(deployment.policy_file))).plan.is_empty
