"""On-behalf-of token exchange (RFC 8693) end to end through `agent-auth dev`.

Alice's delegated token (Chromium signs her in and she consents), and in another test an ID token of the
development OpenID provider configured as a trusted issuer, is exchanged by agent A for API X, then by
agent B for API Y. The final `act` chain reads B then A; scope and expiry stay within each step; a third
hop beyond `max_chain` is refused; `agent-auth audit --user` shows who acted for whom.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from tests.e2e.conftest import DevServer, start_dev_server, stop_dev_server
from tests.e2e.sign_in import ALICE, Callback, delegate
from tests.support import ROOT, policy_document, rsa_key, write_policy

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
CRM, BILLING, MAIL = "https://crm.example.com", "https://billing.example.com", "https://mail.example.com"


def exchange_policy() -> dict[str, Any]:
    """The tests' default policy, plus a mail API and three exchanging agents:
    agent-a (X = billing, tokens of public-app), agent-b (Y = mail, tokens of agent-a, two hops),
    agent-c (mail, tokens of agent-b, two hops: a third hop is one too many)."""
    document = policy_document({"rsa": rsa_key()})
    document["agents"]["signing-agent"]["jwks"]["keys"][0].pop("kid")
    document["audiences"]["mail"] = {"uri": MAIL, "scopes": {"mail.read": "Read mail", "mail.send": "Send"}}
    document["roles"]["mail-reader"] = ["mail.read"]
    document["users"][ALICE] = ["crm-editor", "billing-reader", "mail-reader"]
    # What public-app may hold for a user: crm (consented on its page), billing and mail read beyond it.
    document["agents"]["public-app"]["delegation"]["scopes"] += ["billing.invoices.read", "mail.read"]
    secret_agent = {"owner": "owner@example.com", "auth": "client_secret_basic"}
    document["agents"]["agent-a"] = {
        **secret_agent,
        # For the trusted issuer's users, agent-a's delegation scopes stand in for a consent.
        "delegation": {
            "redirect_uris": ["http://127.0.0.1:8765/callback"],
            "scopes": ["billing.invoices.read", "mail.read"],
        },
        "exchange": {"audiences": ["billing"], "from": ["public-app"], "max_chain": 1},
    }
    document["agents"]["agent-b"] = {
        **secret_agent,
        "exchange": {"audiences": ["mail"], "from": ["agent-a"], "max_chain": 2},
    }
    document["agents"]["agent-c"] = {
        **secret_agent,
        "exchange": {"audiences": ["mail"], "from": ["agent-b"], "max_chain": 2},
    }
    return document


@pytest.fixture(scope="module")
def exchange_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(tmp_path_factory.mktemp("exchange"), rsa_key(), document=exchange_policy())
    yield server
    stop_dev_server(server.process)


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def post_exchange(
    server: DevServer, agent: str, subject: str, subject_type: str, **params: str
) -> httpx2.Response:
    creds = server.credentials[agent]
    return httpx2.post(
        f"{server.issuer}/token",
        data={"grant_type": EXCHANGE, "subject_token": subject, "subject_token_type": subject_type, **params},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=30,
    )


def two_hops_then_refused(server: DevServer, subject: str, subject_type: str) -> tuple[dict[str, Any], ...]:
    """A exchanges `subject` for billing, B exchanges A's token for mail, C's third hop is refused."""
    first = post_exchange(
        server, "agent-a", subject, subject_type, resource=BILLING, scope="billing.invoices.read"
    )
    assert first.status_code == 200, first.text
    body_a = first.json()
    assert body_a["issued_token_type"] == ACCESS_TOKEN and "refresh_token" not in body_a
    a = claims(body_a["access_token"])
    # The second hop as docs/token-exchange.md shows it, with authlib
    creds = server.credentials["agent-b"]
    second = documented_exchange()(
        f"{server.issuer}/token", creds["client_id"], creds["client_secret"], body_a["access_token"], MAIL
    )
    assert second["issued_token_type"] == ACCESS_TOKEN
    b = claims(second["access_token"])
    third = post_exchange(server, "agent-c", second["access_token"], ACCESS_TOKEN, resource=MAIL)
    assert third.status_code == 400 and third.json()["error"] == "invalid_request", third.text
    assert "access_token" not in third.json()
    return a, b


def documented_exchange() -> Callable[..., dict[str, Any]]:
    """The `exchange` function of docs/token-exchange.md's authlib example, run as written."""
    text = (ROOT / "docs" / "token-exchange.md").read_text()
    [block] = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/token-exchange.md", "exec"), namespace)
    return namespace["exchange"]  # type: ignore[no-any-return]


def assert_chain(subject: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> None:
    # The user stays the subject; the chain reads B, then A (RFC 8693 §4.1)
    assert a["sub"] == b["sub"] == ALICE
    assert a["act"] == {"sub": "agent-a"} and a["client_id"] == "agent-a" and a["aud"] == BILLING
    assert b["act"] == {"sub": "agent-b", "act": {"sub": "agent-a"}} and b["aud"] == MAIL
    # Scope within each step: what was asked, within the user's roles and the chain's origin
    assert a["scope"] == "billing.invoices.read" and b["scope"] == "mail.read"
    # Expiry within each step
    assert b["exp"] <= a["exp"] <= subject["exp"]


def assert_audited(server: DevServer) -> None:
    audit = server.cli("audit", "--dev", "--user", ALICE, "--since", "1h")
    assert audit.returncode == 0, audit.stderr
    assert re.search(r"agent-b for alice@example\.com via agent-b, agent-a", audit.stdout), audit.stdout
    records = [
        json.loads(line)
        for line in server.cli(
            "audit", "--dev", "--json", "--since", "1h", "--agent", "agent-c"
        ).stdout.splitlines()
    ]
    refused = [r for r in records if r.get("grant_type") == EXCHANGE]
    assert refused and refused[0]["decision"] == "deny" and refused[0]["reason"] == "chain_too_deep"


@pytest.mark.browser
def test_a_users_delegated_token_is_exchanged_twice_and_a_third_hop_is_refused(
    exchange_server: DevServer, callback: Callback
) -> None:
    # Given alice's delegated token for crm, issued to public-app after she consented
    delegated = delegate(exchange_server, callback, "crm.contacts.read", resource=CRM)
    user_token = delegated.token["access_token"]
    # When agent-a exchanges it for billing, agent-b that for mail, and agent-c tries a third hop
    a, b = two_hops_then_refused(exchange_server, user_token, ACCESS_TOKEN)
    # Then the chain, scopes and expiry are as issue 9 says, and the audit trail shows who acted for whom
    assert_chain(claims(user_token), a, b)
    assert a["origin"] == {"iss": exchange_server.issuer, "client_id": "public-app"}
    assert_audited(exchange_server)


def dev_provider_id_token(server: DevServer) -> str:
    """An ID token of the development provider, for alice: its sign-in form posted as a browser would,
    the code taken from the redirect (to agent-auth's own callback, not followed) and redeemed."""
    state = json.loads((server.workdir / ".agent-auth" / "dev.json").read_text())["settings"]
    provider, client_id = state["UPSTREAM_ISSUER"], state["UPSTREAM_CLIENT_ID"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = f"{server.issuer}/authorize/callback"
    fields = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s-1",
        "nonce": "n-1",
    }
    page = httpx2.get(f"{provider}/authorize?{urlencode(fields)}", timeout=30)
    assert page.status_code == 200 and 'name="username"' in page.text
    signed_in = httpx2.post(
        f"{provider}/authorize", data={**fields, "username": ALICE}, follow_redirects=False, timeout=30
    )
    assert signed_in.status_code == 302, signed_in.text
    code = parse_qs(urlsplit(signed_in.headers["location"]).query)["code"][0]
    token = httpx2.post(
        f"{provider}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, state["UPSTREAM_CLIENT_SECRET"]),
        timeout=30,
    )
    assert token.status_code == 200, token.text
    return str(token.json()["id_token"])


def test_a_trusted_issuers_token_is_exchanged_twice_and_a_third_hop_is_refused(tmp_path: Path) -> None:
    # Given agent-auth dev, and the development provider then configured as a trusted issuer
    server = start_dev_server(tmp_path, rsa_key(), document=exchange_policy())
    try:
        provider = json.loads((tmp_path / ".agent-auth" / "dev.json").read_text())["settings"]
        document = yaml_safe(server.policy_file)
        document["trusted_issuers"] = [
            {
                "issuer": provider["UPSTREAM_ISSUER"],
                "jwks_uri": provider["UPSTREAM_ISSUER"] + "/jwks.json",
                "audience": provider["UPSTREAM_CLIENT_ID"],
                "user_claim": "email",
                "algorithms": ["RS256"],
            }
        ]
        applied = server.cli("apply", str(write_policy(tmp_path / "trusting.yaml", document)), "--dev")
        assert applied.returncode == 0, applied.stderr
        id_token = dev_provider_id_token(server)
        # When agent-a exchanges it for billing, agent-b that for mail, and agent-c tries a third hop
        a, b = two_hops_then_refused(server, id_token, ID_TOKEN)
        # Then the chain, scopes and expiry are as for our own tokens
        assert_chain(claims(id_token), a, b)
        assert a["origin"] == {"iss": provider["UPSTREAM_ISSUER"], "client_id": "agent-a"}
        # And the same ID token is exchanged only once
        again = post_exchange(server, "agent-a", id_token, ID_TOKEN, resource=BILLING)
        assert again.status_code == 400 and again.json()["error"] == "invalid_request"
        assert_audited(server)
    finally:
        stop_dev_server(server.process)


def yaml_safe(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]
