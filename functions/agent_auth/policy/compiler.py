"""From a policy file to the items the token path reads.

`load_policy` parses and checks; `compile_policy` turns a valid policy into one self-contained item per
agent: its auth method, keys with pinned algorithms, the scope -> audience map of its standing
access and what it may ask users for (delegation), plus one item for the whole `users` directory.
Issuing a token reads those items and never parses policy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from agent_auth.oauth import jose
from agent_auth.policy.checks import check_policy
from agent_auth.policy.model import (
    APPROVER_LIST,
    APPROVER_MAPPING,
    Agent,
    ApproverGroup,
    Audience,
    Delegation,
    Exchange,
    JitRule,
    Policy,
    TrustedIssuer,
    approver_members,
    approver_sign_in,
)
from agent_auth.policy.source import (
    MAX_POLICY_BYTES,
    Path,
    PolicyInvalid,
    PolicyProblem,
    Source,
    read_source,
)

COMPILED_FORMAT = 3
"""Increased whenever compiled items gain or change a field, so `apply` rewrites items an older release
wrote even when the document itself did not change (2: delegation and the users directory; 3: exchange,
with the trusted issuers, and the audiences an agent serves as a resource server)."""


@dataclass(frozen=True)
class CompiledPolicy:
    document: dict[str, Any]
    """The validated policy as plain JSON-ready data: what `apply` stores and diffs against."""
    agents: dict[str, dict[str, Any]]
    """client_id -> the agent's item (without any secret, which only `secret rotate` sets)."""
    groups: dict[str, dict[str, Any]]
    """approver group -> its item, {"members": [...], "sign_in": bool}, read when an approver decides
    (membership, and whether the approver must be signed in, are checked then)."""
    digest: str
    users: dict[str, dict[str, list[str]]]
    """The `users` directory: {"by_email": {email: scopes}, "by_group": {group: scopes}} (one item)."""
    format: int = COMPILED_FORMAT
    """The layout of the compiled items; an applied policy of another format is rewritten by apply."""


def load_policy(path: str) -> CompiledPolicy:
    """What `apply` and `agent-auth dev` read: at most the size limit is read, so a huge or endless
    file is refused without filling memory; the YAML reader bounds the rest (policy/source.py)."""
    file = FsPath(path)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyInvalid(
            [PolicyProblem(path, 1, "", f"cannot read the file ({exc.strerror})", "check the path")]
        ) from exc
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyInvalid([PolicyProblem(path, 1, "", "the file is larger than 1 MiB", "split it up")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyInvalid(
            [PolicyProblem(path, 1, "", "the file is not UTF-8", "save it as UTF-8")]
        ) from exc
    return compile_policy(parse_policy(path, text))


def parse_policy(file: str, text: str) -> Policy:
    source = read_source(file, text)
    if not isinstance(source.data, dict):
        raise PolicyInvalid([source.problem((), "the policy must be a mapping", "start with `version: 1`")])
    try:
        policy = Policy.model_validate(source.data)
    except ValidationError as exc:
        raise PolicyInvalid([_problem_from_pydantic(source, error) for error in exc.errors()]) from exc
    problems = check_policy(policy, source)
    if problems:
        raise PolicyInvalid(problems)
    return policy


def _allowed_keys(path: Path) -> list[str]:
    """The keys allowed beside an unknown one, so the fix can list them."""
    parent: Any = None
    head = path[0] if path else None
    if len(path) == 1:
        parent = Policy
    elif len(path) == 3:
        parent = {
            "agents": Agent,
            "audiences": Audience,
            "trusted_issuers": TrustedIssuer,
            "approvers": ApproverGroup,
        }.get(str(head))
    elif len(path) == 4 and head == "agents":
        parent = {"delegation": Delegation, "exchange": Exchange}.get(str(path[2]))
    elif len(path) == 5 and head == "agents" and path[2] == "jit":
        parent = JitRule
    elif len(path) == 3 and head == "trusted_issuers":
        parent = TrustedIssuer
    return sorted(f.alias or name for name, f in parent.model_fields.items()) if parent else []


def _problem_from_pydantic(source: Source, error: Any) -> PolicyProblem:
    path: Path = tuple(
        p
        for p in error["loc"]
        if p not in ("[key]", APPROVER_LIST, APPROVER_MAPPING) and not str(p).startswith("function-")
    )
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(path))
        return source.problem(
            path, f"unknown key {path[-1]!r}", f"remove it or check its spelling (allowed here: {allowed})"
        )
    if kind == "missing":
        return source.problem(path, f"required key {path[-1]!r} is missing", f"add `{path[-1]}:`")
    if kind == "string_pattern_mismatch":
        return source.problem(
            path, f"{error['input']!r} is not a valid {_what(path)}", _FORMAT_FIX[_what(path)]
        )
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    return source.problem(path, message, "see docs/policy.md for the format of this key")


def _what(path: Path) -> str:
    text = " ".join(str(p) for p in path)
    if any(k in text for k in ("owner", "approvers ")) or (path and path[0] == "approvers"):
        return "email address"
    if "scope" in text or "never" in text or (len(path) == 3 and path[0] == "roles"):
        return "scope name"
    return "name"


_FORMAT_FIX = {
    "email address": "write an address such as lead@example.com",
    "scope name": "scope names are 1-128 printable ASCII characters without spaces, quotes or backslashes",
    "name": "names are 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
}


def compile_policy(policy: Policy) -> CompiledPolicy:
    document = policy.model_dump(mode="json", by_alias=True)
    scope_audience = {s: name for name, aud in policy.audiences.items() for s in aud.scopes}
    agents = {name: _agent_item(policy, name, agent, scope_audience) for name, agent in policy.agents.items()}
    digest = hashlib.sha256(jose.compact_json(document)).hexdigest()
    groups = {
        name: {"members": sorted(approver_members(group)), "sign_in": approver_sign_in(group)}
        for name, group in policy.approvers.items()
    }
    return CompiledPolicy(
        document=document,
        agents=agents,
        groups=groups,
        digest=digest,
        users=_users_directory(policy),
    )


def _users_directory(policy: Policy) -> dict[str, dict[str, list[str]]]:
    """Who may hold which scopes when an agent acts for them: emails lower-cased (the checks refuse two
    entries that differ only in case), groups without their `group:` prefix."""
    by_email: dict[str, list[str]] = {}
    by_group: dict[str, list[str]] = {}
    for who, roles in policy.users.items():
        scopes = sorted({s for role in roles for s in policy.roles[role]})
        if who.startswith("group:"):
            by_group[who[len("group:") :]] = scopes
        else:
            by_email[who.lower()] = scopes
    return {"by_email": by_email, "by_group": by_group}


def _delegation_item(agent: Agent, scope_audience: dict[str, str]) -> dict[str, Any] | None:
    """What the authorize endpoint reads: where codes may go, what may be asked for and which audience
    each of those scopes belongs to (one read, no policy)."""
    if agent.delegation is None:
        return None
    scopes = sorted(set(agent.delegation.scopes))
    return {
        "redirect_uris": list(agent.delegation.redirect_uris),
        "scopes": scopes,
        "offline_access": agent.delegation.offline_access,
        "consent": agent.delegation.consent,
        "scope_audiences": {s: scope_audience[s] for s in scopes},
    }


def _exchange_item(policy: Policy, agent: Agent) -> dict[str, Any] | None:
    """What the exchange grant reads (oauth/grant_types/token_exchange.py), in the one agent read: each
    target audience with its uri and scopes, whose tokens the agent may exchange, the chain bound, and
    every trusted issuer (top level in the file, copied here so an exchange needs no other read)."""
    if agent.exchange is None:
        return None
    return {
        "audiences": {
            name: {"uri": policy.audiences[name].uri, "scopes": sorted(policy.audiences[name].scopes)}
            for name in sorted(set(agent.exchange.audiences))
        },
        "from": sorted(set(agent.exchange.from_)),
        "max_chain": agent.exchange.max_chain,
        "trusted_issuers": [t.model_dump(mode="json") for t in policy.trusted_issuers],
    }


def _agent_item(policy: Policy, name: str, agent: Agent, scope_audience: dict[str, str]) -> dict[str, Any]:
    standing = sorted({s for role in agent.roles for s in policy.roles[role]})
    jit: list[dict[str, Any]] = []
    for rule in agent.jit:
        scopes = sorted(rule.scopes or policy.roles[rule.role or ""])
        jit.append(
            {
                "scopes": scopes,
                "audience": scope_audience[scopes[0]],
                "approvers": rule.approvers,
                "auto": rule.auto,
                "max_duration": rule.max_duration,
                "single_use": rule.single_use,
            }
        )
    delegation = _delegation_item(agent, scope_audience)
    delegated = delegation["scopes"] if delegation else []
    reachable = (
        {scope_audience[s] for s in standing}
        | {rule["audience"] for rule in jit}
        | {scope_audience[s] for s in delegated}
    )
    requestable = {s for rule in jit for s in rule["scopes"]}
    # What approvers (just-in-time) and users (consent) are shown for each scope they are asked about.
    descriptions = {
        s: policy.audiences[scope_audience[s]].scopes[s] for s in sorted(requestable | set(delegated))
    }
    keys = [{**key, "alg": jose.pinned_alg(key)} for key in (agent.jwks or {}).get("keys", [])]
    return {
        "client_id": name,
        "owner": agent.owner,
        "auth_method": agent.auth,
        "jwks": json.dumps({"keys": keys}, separators=(",", ":")) if agent.jwks is not None else None,
        "jwks_uri": agent.jwks_uri,
        "roles": list(agent.roles),
        # scope -> audience name, and audience name -> uri: all a token decision needs, in one read.
        "scopes": {scope: scope_audience[scope] for scope in standing},
        "audiences": {a: policy.audiences[a].uri for a in sorted(reachable)},
        "never": sorted(agent.never),
        # Just-in-time rules, resolved to scopes and one audience each, with what approvers are shown.
        "jit": jit,
        "descriptions": descriptions,
        # Acting for users (authorization code); None removes it from the item on apply.
        "delegation": delegation,
        # On-behalf-of (token exchange); None removes it from the item on apply.
        "exchange": _exchange_item(policy, agent),
        # Audiences whose resource server this agent is: it may introspect their tokens (RFC 7662 §4).
        "serves": {a: aud.uri for a, aud in sorted(policy.audiences.items()) if name in aud.resource_servers},
        "policy": json.dumps(
            agent.model_dump(mode="json", by_alias=True), separators=(",", ":"), sort_keys=True
        ),
    }
