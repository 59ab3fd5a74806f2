"""Validating an authorization request (RFC 6749 §4.1.1, §4.1.2.1; RFC 7636; RFC 8707; RFC 9207).

Two kinds of refusal, in this order. Until the client and its redirect URI are known to be genuine,
an error is shown as a page and never redirected (RFC 6749 §4.1.2.1: else the endpoint is an open
redirector). After that, errors go back to the client's redirect URI with `error`, `state` and `iss`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent_auth.oauth.authorize.pkce import S256, valid_challenge
from agent_auth.oauth.authorize.redirect_uris import redirect_uri_matches
from agent_auth.oauth.scopes import MAX_SCOPES, SCOPE_TOKEN
from agent_auth.records import Agent, Delegation

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
OIDC_SCOPES = frozenset({OPENID, OFFLINE_ACCESS})
MAX_STATE = 512
MAX_NONCE = 256
PROMPTS = frozenset({"none", "consent", "login"})
AGENT_DISABLED = "This application has been disabled. Contact its owner."


class AuthorizePageError(Exception):
    """Before the client and redirect URI are trusted: an HTML error page, never a redirect."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


class AuthorizeRedirectError(Exception):
    """After: back to the client with `error` (RFC 6749 §4.1.2.1), `state` and `iss`."""

    def __init__(self, error: str, reason: str, redirect_uri: str, state: str | None) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.redirect_uri = redirect_uri
        self.state = state


Refuse = Callable[[str, str], AuthorizeRedirectError]


@dataclass(frozen=True)
class ValidatedRequest:
    agent: Agent
    redirect_uri: str
    state: str | None
    code_challenge: str
    audience: str
    """The audience URI the token will name."""
    scopes: tuple[str, ...]
    """requested ∩ the agent's delegation scopes (the user's roles narrow it further once known)."""
    nonce: str | None
    prompt: str | None

    @property
    def delegation(self) -> Delegation:
        assert self.agent.delegation is not None
        return self.agent.delegation


def validate_authorization_request(
    params: Mapping[str, str | None], agent: Agent | None, repeated: frozenset[str] = frozenset()
) -> ValidatedRequest:
    """`params` holds single query values; `repeated` names parameters sent more than once, which are
    refused (RFC 6749 §3.1), never guessed between."""
    client_id = params.get("client_id")
    if repeated & {"client_id", "redirect_uri"}:
        raise AuthorizePageError("repeated_parameter", "The request is malformed.")
    if not client_id:
        raise AuthorizePageError("missing_client_id", "The request does not name an application.")
    if agent is None or agent.delegation is None:
        raise AuthorizePageError("unknown_client", "This application is not registered to act for users.")
    if agent.disabled:
        # The kill switch: refused where an unknown client is, as a page. The browser is never sent to
        # a disabled agent's redirect URI (its operator stopped trusting it).
        raise AuthorizePageError("agent_disabled", AGENT_DISABLED)
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or not redirect_uri_matches(redirect_uri, agent.delegation.redirect_uris):
        raise AuthorizePageError(
            "redirect_uri_not_registered", "The application's return address is not registered."
        )
    state = params.get("state")

    def refuse(error: str, reason: str) -> AuthorizeRedirectError:
        return AuthorizeRedirectError(error, reason, redirect_uri, state)

    if "state" in repeated or (state is not None and (len(state) > MAX_STATE or not state.isprintable())):
        raise AuthorizeRedirectError("invalid_request", "bad_state", redirect_uri, None)
    if "resource" in repeated:
        raise refuse("invalid_target", "several_resources")  # RFC 8707: one audience per token
    if repeated:
        raise refuse("invalid_request", "repeated_parameter")
    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "response_type_not_code")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if not challenge or method != S256 or not valid_challenge(challenge):
        raise refuse("invalid_request", "pkce_s256_required")
    nonce, prompt = params.get("nonce"), params.get("prompt")
    if nonce is not None and (len(nonce) > MAX_NONCE or not nonce.isprintable()):
        raise refuse("invalid_request", "bad_nonce")
    if prompt is not None and prompt not in PROMPTS:
        raise refuse("invalid_request", "unsupported_prompt")
    requested = _requested_scopes(params.get("scope"), refuse)
    scopes, audience = _narrow(agent, requested, params.get("resource"), refuse)
    return ValidatedRequest(agent, redirect_uri, state, challenge, audience, scopes, nonce, prompt)


def _requested_scopes(raw: str | None, refuse: Refuse) -> tuple[str, ...] | None:
    if raw is None:
        return None  # RFC 6749 §3.3: the default applies (the MCP conformance suite sends none)
    tokens = raw.split(" ")
    if len(tokens) > MAX_SCOPES or not all(SCOPE_TOKEN.match(t) for t in tokens):
        raise refuse("invalid_scope", "malformed_scope")
    return tuple(dict.fromkeys(tokens))


def same_resource(a: str, b: str) -> bool:
    """RFC 8707 resource URIs: scheme and host compared case-insensitively, the rest exactly."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (
        pa.scheme.lower() == pb.scheme.lower()
        and pa.netloc.lower() == pb.netloc.lower()
        and (pa.path or "/") == (pb.path or "/")
        and pa.query == pb.query
    )


def _narrow(
    agent: Agent, requested: tuple[str, ...] | None, resource: str | None, refuse: Refuse
) -> tuple[tuple[str, ...], str]:
    """Scope at /authorize may come out narrower than requested, never wider (product.md)."""
    assert agent.delegation is not None
    delegation = agent.delegation
    by_audience = dict(delegation.scope_audiences)
    audience_name: str | None = None
    if resource is not None:
        if "#" in resource:
            raise refuse("invalid_target", "malformed_resource")
        audience_name = next((n for n, uri in agent.audiences.items() if same_resource(uri, resource)), None)
        if audience_name is None:
            raise refuse("invalid_target", "resource_not_allowed")
    allowed = [s for s in delegation.scopes if s not in agent.never]
    wanted = allowed if requested is None else [s for s in requested if s in allowed]
    if audience_name is not None:
        wanted = [s for s in wanted if by_audience.get(s) == audience_name]
    audiences = {by_audience[s] for s in wanted if s in by_audience}
    if len(audiences) > 1:
        raise refuse("invalid_target", "resource_required")
    if not wanted:
        raise refuse("access_denied", "no_scope_left")
    audience_name = audience_name or audiences.pop()
    oidc = [s for s in (requested or ()) if s in OIDC_SCOPES]
    if OFFLINE_ACCESS in oidc and not delegation.offline_access:
        oidc.remove(OFFLINE_ACCESS)
    return (*oidc, *sorted(wanted)), agent.audiences[audience_name]
