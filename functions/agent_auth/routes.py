"""Which function serves which path, defined once for the CDK API and the development server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    """CDK construct id and the handler module under agent_auth.handlers."""
    paths: tuple[str, ...]
    """Every method on these paths reaches the function, so it can answer 405 itself."""

    @property
    def handler(self) -> str:
        return f"agent_auth.handlers.{self.name}.lambda_handler"


TOKEN = FunctionSpec(name="token", paths=("/token",))
WELL_KNOWN = FunctionSpec(
    name="wellknown",
    paths=("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks.json"),
)

FUNCTIONS: tuple[FunctionSpec, ...] = (TOKEN, WELL_KNOWN)
