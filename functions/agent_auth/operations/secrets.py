"""`agent-auth secret rotate`: a new client secret, shown once; only its hash is stored.

The old secret keeps working for a grace period (one hour unless `--grace` says otherwise), so the agent's
owner can roll the new one out without an outage; each use of it in that time is audited as a use of the
previous secret. `--grace 0` is for a leaked secret: it stops working at once. Only one previous secret is
kept: rotating again during a grace period ends the older secret's grace at once.
"""

from __future__ import annotations

from agent_auth.audit import AuditRecord
from agent_auth.oauth.client_secrets import generate_secret, hash_secret
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.records import PreviousSecret
from agent_auth.timefmt import iso_seconds

DEFAULT_GRACE = 3600
"""Seconds the previous secret keeps authenticating after a rotation."""
MAX_GRACE = 30 * 86400


def rotate_secret(target: Target, client_id: str, *, grace: int = 0) -> dict[str, str]:
    """The change and its audit record are one transaction. `grace` defaults to 0 here (the first
    secret of a new agent has nothing to keep); the CLI's default is DEFAULT_GRACE."""
    if not 0 <= grace <= MAX_GRACE:
        raise OperationFailed(f"the grace period must be between 0 and {MAX_GRACE} seconds, got {grace}")
    now = target.clock.now()
    previous = _previous(target, client_id, int(now) + grace) if grace else None
    secret = generate_secret()
    details: dict[str, object] = {"grace_seconds": grace}
    if previous is not None:
        details["previous_secret_expires_at"] = iso_seconds(previous.expires_at)
    record = AuditRecord(
        action="secret.rotate",
        decision="allow",
        at=now,
        client_id=client_id,
        operator=target.operator,
        details=details,
    )
    if not target.agents.set_secret_hash(
        client_id, hash_secret(secret), iso_seconds(now), target.audit.entry(record), previous=previous
    ):
        _refuse(target, client_id, raced=previous is not None)
    if target.credentials is not None:
        target.credentials.update(client_id, secret)
    # Exactly these two: scripts read the printed JSON (the grace period's end is in the audit record).
    return {"client_id": client_id, "client_secret": secret}


def _previous(target: Target, client_id: str, until: int) -> PreviousSecret | None:
    """The current secret, to keep until `until`; None when the agent has none yet (nothing to keep)."""
    agent = target.agents.get_client(client_id)
    if agent is None or agent.secret_hash is None:
        return None  # an unknown agent, or one without a secret, is refused by the write itself
    return PreviousSecret(agent.secret_hash, until)


def _refuse(target: Target, client_id: str, *, raced: bool) -> None:
    agent = target.agents.get_client(client_id)
    if agent is None:
        raise OperationFailed(f"no agent named {client_id!r} in {target.name}; is it in the applied policy?")
    if agent.secret_hash is not None and agent.auth_method.startswith("client_secret") and raced:
        raise OperationFailed(
            f"the secret of {client_id} changed while rotating it; nothing was changed, try again"
        )
    raise OperationFailed(
        f"{client_id} authenticates with {agent.auth_method}, not a client secret; nothing to rotate"
    )
