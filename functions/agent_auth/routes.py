"""Which function serves which path, defined once for the CDK API and the development server."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    """CDK construct id and the handler module under agent_auth.handlers."""
    paths: tuple[str, ...] = ()
    """Every method on these paths reaches the function, so it can answer 405 itself.
    `{name}` is a path parameter, as in API Gateway resource paths."""

    @property
    def handler(self) -> str:
        return f"agent_auth.handlers.{self.name}.lambda_handler"


def path_pattern(path: str) -> re.Pattern[str]:
    """An API Gateway resource path ("/approvals/{request_id}") as a regex with named groups."""
    parts = re.split(r"(\{\w+\})", path)
    regex = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


TOKEN = FunctionSpec(name="token", paths=("/token",))
ACCESS_REQUESTS = FunctionSpec(name="access_requests", paths=("/access-requests",))
APPROVALS = FunctionSpec(name="approvals", paths=("/approvals/{request_id}",))
WELL_KNOWN = FunctionSpec(
    name="wellknown",
    paths=("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks.json"),
)
AUTHORIZE = FunctionSpec(
    name="authorize",
    paths=("/authorize", "/authorize/callback", "/authorize/consent", "/authorize/approver"),
)
"""Delegated access: the authorization endpoint, the upstream provider's callback, and consent; and
the sign-in of approvers whose group requires it."""
LIFECYCLE = FunctionSpec(name="lifecycle", paths=("/introspect", "/revoke"))
"""After issue: introspection (RFC 7662) and revocation (RFC 7009), for authenticated agents."""
NOTIFIER = FunctionSpec(name="notifier")
"""Not behind the API: triggered by the access-requests table's stream."""

FUNCTIONS: tuple[FunctionSpec, ...] = (TOKEN, ACCESS_REQUESTS, APPROVALS, WELL_KNOWN, AUTHORIZE, LIFECYCLE)
"""The functions behind the API."""

ALL_FUNCTIONS: tuple[FunctionSpec, ...] = (*FUNCTIONS, NOTIFIER)
"""Every Lambda function the stack deploys."""
