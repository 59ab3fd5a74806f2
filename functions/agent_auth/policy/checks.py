"""Whole-document checks: references resolve, rules agree, client keys are public and pinned.

Each problem names the file, the line and the fix; all problems are reported at once.
"""

from __future__ import annotations

import re
from typing import Any

from agent_auth.names import EMAIL_PATTERN, NAME_PATTERN
from agent_auth.oauth import jose
from agent_auth.policy.model import Agent, ApproverGroup, Policy, approver_members
from agent_auth.policy.source import Path, PolicyProblem, Source

NOT_BUILT_TOP_LEVEL: dict[str, str] = {}
NOT_BUILT_PER_AGENT: dict[str, str] = {}
"""Keys whose feature is not built yet: the model knows their shape, but until the code that reads a
key exists, using it is an error that says so (a key that silently does nothing is a trap). To turn
one on, remove it here."""

RESERVED_SCOPES = ("openid", "offline_access")
"""Protocol scopes (OpenID Connect Core §3.1.2.1, §11): never a scope of an audience."""


def check_policy(policy: Policy, source: Source) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []

    def problem(path: Path, message: str, fix: str) -> None:
        problems.append(source.problem(path, message, fix))

    for key, feature in NOT_BUILT_TOP_LEVEL.items():
        if key in policy.model_fields_set:
            _not_built(problem, (key,), feature)
    for name, agent in policy.agents.items():
        for key, feature in NOT_BUILT_PER_AGENT.items():
            if key in agent.model_fields_set:
                _not_built(problem, ("agents", name, key), feature)

    scope_owner: dict[str, str] = {}
    uris: dict[str, str] = {}
    for name, audience in policy.audiences.items():
        if audience.uri in uris:
            problem(
                ("audiences", name, "uri"),
                f"uri is also the uri of audience {uris[audience.uri]!r}",
                "give every audience its own uri",
            )
        uris.setdefault(audience.uri, name)
        for scope in audience.scopes:
            if scope in RESERVED_SCOPES:
                problem(
                    ("audiences", name, "scopes", scope),
                    f"{scope!r} is a protocol scope (OpenID Connect), not an audience's",
                    "rename the scope; agents ask for it without declaring it",
                )
            if scope in scope_owner:
                problem(
                    ("audiences", name, "scopes", scope),
                    f"scope {scope!r} is already a scope of audience {scope_owner[scope]!r}",
                    "a scope belongs to one audience: rename one of them",
                )
            scope_owner.setdefault(scope, name)
        for i, server in enumerate(audience.resource_servers):
            if server not in policy.agents:
                problem(
                    ("audiences", name, "resource_servers", i),
                    f"unknown agent {server!r}",
                    "name an agent declared under `agents:` (the one the resource server authenticates as)",
                )

    def known_scopes(path: Path, scopes: list[str]) -> None:
        for i, scope in enumerate(scopes):
            if scope not in scope_owner:
                problem(
                    (*path, i),
                    f"unknown scope {scope!r}",
                    "declare it under an audience's `scopes:` or use one that is declared",
                )

    for role, scopes in policy.roles.items():
        if not scopes:
            problem(("roles", role), "a role needs at least one scope", "list its scopes or remove the role")
        known_scopes(("roles", role), scopes)

    def known_role(path: Path, role: str) -> None:
        if role not in policy.roles:
            choices = ", ".join(sorted(policy.roles)) or "none are defined"
            problem(path, f"unknown role {role!r}", f"define it under `roles:` or use one of: {choices}")

    for group, approvers in policy.approvers.items():
        if not approver_members(approvers):
            mapping = isinstance(approvers, ApproverGroup)
            problem(
                ("approvers", group, "members") if mapping else ("approvers", group),
                "an approver group needs at least one member",
                "list the approvers' email addresses",
            )

    _check_users(policy, problem, known_role)
    _check_trusted_issuers(policy, problem)

    for name, agent in policy.agents.items():
        _check_agent(
            policy,
            name=name,
            agent=agent,
            scope_owner=scope_owner,
            problem=problem,
            known_role=known_role,
            known_scopes=known_scopes,
        )
    return problems


def _check_agent(
    policy: Policy,
    *,
    name: str,
    agent: Agent,
    scope_owner: dict[str, str],
    problem: Any,
    known_role: Any,
    known_scopes: Any,
) -> None:
    at: Path = ("agents", name)
    for i, role in enumerate(agent.roles):
        known_role((*at, "roles", i), role)
    known_scopes((*at, "never"), agent.never)
    never = set(agent.never)

    if agent.auth == "private_key_jwt":
        if (agent.jwks is None) == (agent.jwks_uri is None):
            problem(
                (*at, "auth"),
                "private_key_jwt needs exactly one of `jwks` or `jwks_uri`",
                "register the agent's public keys with `jwks: {keys: [...]}` or `jwks_uri: URL`",
            )
        if agent.jwks is not None:
            for message, path in check_jwks(agent.jwks):
                problem(
                    (*at, "jwks", *path),
                    message,
                    "register public RSA (2048+ bits), EC P-256 or Ed25519 keys, each with a kid",
                )
    elif agent.jwks is not None or agent.jwks_uri is not None:
        problem(
            (*at, "auth"),
            f"keys are only used with private_key_jwt, not {agent.auth}",
            "remove `jwks`/`jwks_uri` or set `auth: private_key_jwt`",
        )
    if agent.auth == "none":
        _check_public(agent, at, problem)

    for i, role in enumerate(agent.roles):
        clash = sorted(never & set(policy.roles.get(role, [])))
        if clash:
            problem(
                (*at, "roles", i),
                f"role {role!r} grants {', '.join(clash)}, which `never` forbids",
                "remove the role or the scope from `never`",
            )
    for i, rule in enumerate(agent.jit):
        rule_at = (*at, "jit", i)
        if rule.role is not None:
            known_role((*rule_at, "role"), rule.role)
        if rule.scopes is not None:
            known_scopes((*rule_at, "scopes"), rule.scopes)
        if rule.approvers is not None and rule.approvers not in policy.approvers:
            choices = ", ".join(sorted(policy.approvers)) or "none are defined"
            problem(
                (*rule_at, "approvers"),
                f"unknown approver group {rule.approvers!r}",
                f"define it under `approvers:` or use one of: {choices}",
            )
        wanted = set(rule.scopes or policy.roles.get(rule.role or "", []))
        if len({scope_owner.get(s) for s in wanted}) > 1:
            problem(
                rule_at,
                "this rule's scopes belong to more than one audience",
                "split it into one rule per audience",
            )
        clash = sorted(wanted & never)
        if clash:
            problem(
                rule_at,
                f"this rule could grant {', '.join(clash)}, which `never` forbids",
                "remove the rule or the scope from `never`",
            )
    if agent.delegation is not None:
        # Delegation scopes may span audiences: /authorize then needs `resource` to pick one.
        known_scopes((*at, "delegation", "scopes"), agent.delegation.scopes)
        clash = sorted(set(agent.delegation.scopes) & never)
        if clash:
            problem(
                (*at, "delegation", "scopes"),
                f"{', '.join(clash)} is also in `never`",
                "remove it from one of the two",
            )
        for field in ("redirect_uris", "scopes"):
            seen: set[str] = set()
            for i, value in enumerate(getattr(agent.delegation, field)):
                if value in seen:
                    problem((*at, "delegation", field, i), f"{value!r} is listed twice", "keep one of them")
                seen.add(value)
    if agent.exchange is not None:
        _check_exchange(policy, name, agent, problem)


def _check_exchange(policy: Policy, name: str, agent: Agent, problem: Any) -> None:
    """`exchange`: audiences and agents that exist, each once; a confidential agent (RFC 8693 §2.1:
    the exchange is a token request, and a public agent cannot authenticate one)."""
    at: Path = ("agents", name, "exchange")
    assert agent.exchange is not None
    if agent.auth == "none":
        problem(
            (*at,),
            "a public client (auth: none) cannot exchange tokens: it cannot authenticate",
            "give the agent a confidential auth method, or remove `exchange`",
        )
    seen: set[str] = set()
    for i, audience in enumerate(agent.exchange.audiences):
        if audience not in policy.audiences:
            problem((*at, "audiences", i), f"unknown audience {audience!r}", "declare it under `audiences:`")
        elif audience in seen:
            problem((*at, "audiences", i), f"{audience!r} is listed twice", "keep one of them")
        seen.add(audience)
    seen = set()
    for i, other in enumerate(agent.exchange.from_):
        if other not in policy.agents:
            choices = ", ".join(sorted(policy.agents))
            problem(
                (*at, "from", i),
                f"unknown agent {other!r}",
                f"name an agent of this file ({choices}); its own tokens always count",
            )
        elif other in seen:
            problem((*at, "from", i), f"{other!r} is listed twice", "keep one of them")
        seen.add(other)


def _check_trusted_issuers(policy: Policy, problem: Any) -> None:
    """Each issuer once (its `iss` picks its keys), each algorithm once."""
    issuers: dict[str, int] = {}
    for i, trusted in enumerate(policy.trusted_issuers):
        if trusted.issuer in issuers:
            problem(
                ("trusted_issuers", i, "issuer"),
                f"issuer {trusted.issuer!r} is also trusted_issuers[{issuers[trusted.issuer]}]",
                "list each issuer once",
            )
        issuers.setdefault(trusted.issuer, i)
        if len(set(trusted.algorithms)) != len(trusted.algorithms):
            problem(("trusted_issuers", i, "algorithms"), "an algorithm is listed twice", "keep one of them")


def _not_built(problem: Any, path: Path, feature: str) -> None:
    problem(
        path,
        f"not supported yet: {feature} is not built; remove the key",
        f"delete `{path[-1]}:` and what it holds; it is accepted once {feature} exists",
    )


def _check_users(policy: Policy, problem: Any, known_role: Any) -> None:
    """`users`: an email address or `group:NAME` (the upstream ID token's `groups`) -> roles."""
    addresses: dict[str, str] = {}
    for who, roles in policy.users.items():
        at: Path = ("users", who)
        if who.startswith("group:"):
            if not re.fullmatch(NAME_PATTERN, who[len("group:") :]):
                problem(
                    at,
                    f"{who!r} is not a valid group",
                    "write group:NAME, NAME being 1-64 of a-z, 0-9, '.', '_' and '-', "
                    "starting with a letter or digit",
                )
        elif not re.fullmatch(EMAIL_PATTERN, who):
            problem(
                at,
                f"{who!r} is neither an email address nor group:NAME",
                "write an address such as alice@example.com, or group:NAME",
            )
        elif who.lower() in addresses:
            problem(
                at,
                f"{who!r} is the same address as {addresses[who.lower()]!r} (case does not count)",
                "keep one of them",
            )
        else:
            addresses[who.lower()] = who
        if not roles:
            problem(at, "a user entry needs at least one role", "list its roles or remove the entry")
        for i, role in enumerate(roles):
            known_role((*at, i), role)


def _check_public(agent: Agent, at: Path, problem: Any) -> None:
    """A public agent (auth: none) proves nothing about itself: it may only act for a user who signs
    in, with PKCE binding the code to it (OAuth 2.1 §2.1). Keys are refused by the auth check."""
    wrong = []
    if agent.roles:
        wrong.append("cannot hold roles (it cannot authenticate to use them)")
    if agent.jit:
        wrong.append("cannot have just-in-time rules (it cannot authenticate to ask)")
    if agent.delegation is None:
        wrong.append("needs a `delegation` block (a public agent can only act for users)")
    if wrong:
        problem(
            (*at, "auth"),
            f"a public client (auth: none) {'; it '.join(wrong)}",
            "give it a confidential auth method, or use it only for delegation: "
            "remove `roles`/`jit` and add `delegation: {redirect_uris: [...], scopes: [...]}`",
        )


def check_jwks(jwks: dict[str, Any]) -> list[tuple[str, Path]]:
    """Every registered key: public only, a supported type, an algorithm it is pinned to, a unique kid."""
    keys = jwks.get("keys")
    if set(jwks) != {"keys"} or not isinstance(keys, list) or not keys:
        return [("`jwks` must be {keys: [...]} with at least one key", ())]
    found: list[tuple[str, Path]] = []
    kids: set[str] = set()
    for i, key in enumerate(keys):
        at: Path = ("keys", i)
        if not isinstance(key, dict):
            found.append(("a key must be a JWK object", at))
            continue
        kind = jose.key_type(key)
        if kind not in jose.ALLOWED_ALGS:
            found.append((f"unsupported key type {kind!r}", at))
            continue
        if PRIVATE & set(key):
            found.append(("this is a private or symmetric key: register only the public key", at))
            continue
        alg = key.get("alg", jose.DEFAULT_ALG[kind])
        if alg not in jose.ALLOWED_ALGS[kind]:
            found.append((f"alg {alg!r} does not fit a {kind} key", at))
        kid = key.get("kid")
        if kid is not None and not isinstance(kid, str):
            found.append(("kid must be a string", at))
            continue
        if len(keys) > 1 and not kid:
            found.append(("with more than one key, every key needs a kid", at))
        if kid in kids:
            found.append((f"kid {kid!r} is used twice", at))
        kids.add(str(kid))
        try:
            jose.load_public_jwk(key)
        except ValueError as exc:
            found.append((f"not a usable public key ({exc})", at))
    return found


PRIVATE = jose.PRIVATE_MEMBERS
