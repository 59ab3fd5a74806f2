"""A property of every sequence of exchanges (Hypothesis): none widens scope, none extends a lifetime.

Starting from alice's token issued to `front`, any agent may try any exchange of any token obtained so
far, for any target and any requested scope, with the clock moving between steps. Whatever succeeds:
- its scope is within what the chain may ever hold (alice's roles ∩ front's delegation, and on crm the
  consent) and within the target audience; on the subject token's own audience, within the subject's;
- its `exp` is at most its subject's, so at most the first token's;
- its `act` chain is the requesting agent in front of the subject's chain, never deeper than allowed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_auth.errors import OAuthError
from agent_auth.oauth.client_auth import AuthenticatedClient
from agent_auth.oauth.grant_types.registry import TokenContext
from agent_auth.oauth.grant_types.token_exchange import ACCESS_TOKEN_TYPE
from agent_auth.oauth.params import Form
from tests.unit.exchange_support import ALICE, CRM, FILES, MAIL, Harness, claims_of

AGENTS = ("front", "mailer", "filer")
TARGETS = (CRM, MAIL, FILES)
SCOPES = ("crm.read", "crm.write", "mail.read", "mail.send", "files.read", "files.write")
AUDIENCE_SCOPES = {
    CRM: {"crm.read", "crm.write"},
    MAIL: {"mail.read", "mail.send"},
    FILES: {"files.read", "files.write"},
}
CHAIN_CEILING = {"crm.read", "crm.write", "mail.read", "files.read"}
"""alice's roles ∩ front's delegation scopes (front's consent on crm allows both crm scopes)."""
MAX_CHAIN = {"front": 1, "mailer": 2, "filer": 2}

step = st.tuples(
    st.sampled_from((-1, -1, -1, 0, 1, 2, 3)),  # which token obtained so far: mostly the latest
    st.sampled_from(AGENTS),
    st.sampled_from(TARGETS),
    st.one_of(st.none(), st.none(), st.sets(st.sampled_from(SCOPES), min_size=1, max_size=2)),
    st.integers(min_value=0, max_value=200),  # seconds the clock moves first
)


def exchange(h: Harness, agent: str, token: str, target: str, scope: set[str] | None) -> str:
    fields: dict[str, list[str]] = {
        "subject_token": [token],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "resource": [target],
    }
    if scope is not None:
        fields["scope"] = [" ".join(sorted(scope))]
    client = h.agents.get_client(agent)
    assert client is not None
    authenticated = AuthenticatedClient(client_id=agent, method="client_secret_basic", agent=client)
    context = TokenContext(client=authenticated, form=Form(fields), now=int(h.clock.now()))
    return h.grant.issue(context, h.grant.validate(context)).token


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first_scopes=st.sets(st.sampled_from(("crm.read", "crm.write")), min_size=1),
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_no_sequence_of_exchanges_widens_scope_or_extends_a_lifetime(
    first_scopes: set[str], steps: list[tuple[Any, ...]]
) -> None:
    h = Harness()
    first = h.user_token(scopes=tuple(sorted(first_scopes)), lifetime=600)
    tokens = [first]
    for pick, agent, target, scope, wait in steps:
        h.clock.advance(wait)
        subject = tokens[-1] if pick < 0 else tokens[pick % len(tokens)]
        try:
            issued = exchange(h, agent, subject, target, scope)
        except OAuthError:
            continue  # refused: nothing issued, nothing to check
        new, old = claims_of(issued), claims_of(subject)
        granted = set(new["scope"].split())
        assert granted and granted <= CHAIN_CEILING & AUDIENCE_SCOPES[target]
        if old["aud"] == new["aud"]:
            assert granted <= set(old["scope"].split())
        if scope is not None:
            assert granted == scope
        assert new["exp"] <= old["exp"] <= claims_of(first)["exp"]
        assert new["sub"] == ALICE and new["client_id"] == agent
        assert new["act"] == {"sub": agent, **({"act": old["act"]} if "act" in old else {})}
        depth, act = 0, new["act"]
        while act:
            depth, act = depth + 1, act.get("act")
        assert depth <= MAX_CHAIN[agent]
        tokens.append(issued)
