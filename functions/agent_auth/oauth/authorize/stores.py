"""The storage the delegated-access flow needs, as narrow ports (implemented in adapters/).

Every read compares expiry with the clock (TTL only cleans up); every once-only change (completing a
sign-in, redeeming a code, rotating a refresh token) is a conditional write whose loser gets False.
"""

from __future__ import annotations

from typing import Protocol

from agent_auth.oauth.tokens import opaque
from agent_auth.ports import Write
from agent_auth.records import AuthorizationCode, Consent, RefreshFamily, SignIn, UserDirectory, UserSession

SESSION_COOKIE = "agent-auth-session"
"""The signed-in user's cookie (`__Host-` prefixed off loopback): set after an upstream sign-in, read by
/authorize and by approval pages whose group requires sign-in."""


SIGN_IN_COOKIE = "agent-auth-sign-in"
"""The cookie that binds a sign-in to the browser that started it (`__Host-` prefixed off loopback),
one per sign-in: its name ends with the first characters of the sign-in's id (the upstream `state`),
so sign-ins started in parallel tabs each keep their own, and no request has to rewrite another's."""
SIGN_IN_COOKIE_ID_CHARS = 12
"""72 random bits of the sign-in id: enough to tell a browser's pending sign-ins apart."""


def sign_in_cookie_name(sign_in_id: str) -> str:
    return f"{SIGN_IN_COOKIE}-{sign_in_id[:SIGN_IN_COOKIE_ID_CHARS]}"


def session_hash(cookie: str) -> str:
    """Sessions are stored under the hash of their cookie, never the cookie itself."""
    return opaque.digest(cookie)


class SignInStore(Protocol):
    def put_sign_in(self, sign_in: SignIn) -> None: ...

    def get_sign_in(self, sign_in_id: str, now: int) -> SignIn | None:
        """None when unknown or expired."""
        ...

    def complete_sign_in(self, sign_in_id: str, user: str, groups: tuple[str, ...], now: int) -> bool:
        """Record who signed in, once; False when already completed or expired."""
        ...

    def consume_sign_in(self, sign_in_id: str, now: int) -> Write:
        """The write that ends a sign-in when the user decides (fails if already ended)."""
        ...


class SessionStore(Protocol):
    def put_session(self, session: UserSession) -> None: ...

    def get_session(self, session_hash: str, now: int) -> UserSession | None: ...


class CodeStore(Protocol):
    def put_code(self, code: AuthorizationCode) -> Write: ...

    def redeem_code(self, code_hash: str, now: int) -> AuthorizationCode | None:
        """Mark the code redeemed and return it; None when unknown, expired or already redeemed."""
        ...

    def get_code(self, code_hash: str) -> AuthorizationCode | None:
        """The code as stored, redeemed or not (to detect a second redemption)."""
        ...


class RefreshStore(Protocol):
    def put_family(self, family: RefreshFamily) -> Write: ...

    def get_family(self, family_id: str) -> RefreshFamily | None:
        """As stored, revoked or expired too (to tell an old token's reuse from an unknown one)."""
        ...

    def rotate(self, family_id: str, presented_hash: str, new_hash: str, now: int) -> bool:
        """Replace the current token, only if it is `presented_hash` and the family is live."""
        ...

    def revoke_family(self, family_id: str, now: int) -> Write: ...


class ConsentStore(Protocol):
    def get_consent(self, user: str, client_id: str) -> Consent | None:
        """The remembered consent; None when there is none or it was revoked. Users match without case."""
        ...

    def put_consent(self, consent: Consent) -> Write: ...

    def list_consents(self, user: str | None = None) -> list[Consent]: ...

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write: ...


class UserDirectoryReader(Protocol):
    def get_users(self) -> UserDirectory:
        """The policy's users as applied now (one read)."""
        ...
