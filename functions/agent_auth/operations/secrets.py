"""`agent-auth secret rotate`: a new client secret, shown once; only its hash is stored."""

from __future__ import annotations

from agent_auth.audit import AuditRecord
from agent_auth.oauth.client_secrets import generate_secret, hash_secret
from agent_auth.operations.target import OperationFailed, Target
from agent_auth.timefmt import iso_seconds


def rotate_secret(target: Target, client_id: str) -> dict[str, str]:
    """The old secret stops working at once; the change and its audit record are one transaction."""
    secret = generate_secret()
    now = target.clock.now()
    record = AuditRecord(
        action="secret.rotate", decision="allow", at=now, client_id=client_id, operator=target.operator
    )
    if not target.agents.set_secret_hash(
        client_id, hash_secret(secret), iso_seconds(now), target.audit.entry(record)
    ):
        agent = target.agents.get_client(client_id)
        if agent is None:
            raise OperationFailed(
                f"no agent named {client_id!r} in {target.name}; is it in the applied policy?"
            )
        raise OperationFailed(
            f"{client_id} authenticates with {agent.auth_method}, not a client secret; nothing to rotate"
        )
    return {"client_id": client_id, "client_secret": secret}
