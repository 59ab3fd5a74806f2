"""`agent-auth keys rotate | list | retire`: signing keys that rotate without a redeploy (signing_keys.py).

rotate  creates a KMS key behind the deployment's alias prefix and writes it into the key set: published at
        once, signing after the overlap; the key signing now is published until its last token expired.
list    every key and its state (pending, active, previous, unpublished, retired).
retire  disables in KMS the keys no longer published (and schedules the deletion of those `rotate` made).

Each change is audited in the same transaction as the key set write, naming the operator.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from agent_auth.audit import AuditRecord
from agent_auth.clock import Clock
from agent_auth.oauth.jose import kid_for_key
from agent_auth.operations.target import OperationFailed
from agent_auth.ports import Write
from agent_auth.signing_keys import DEFAULT_OVERLAP, MIN_OVERLAP, KeySet, SigningKey
from agent_auth.timefmt import iso_seconds

MAX_OVERLAP = 7 * 86400


class KeySetStore(Protocol):
    def get_key_set(self) -> KeySet | None: ...

    def put_key_set(self, key_set: KeySet, audit: Write) -> bool:
        """False when the stored key set is no longer the one `key_set` was made from."""
        ...


class KeyAdmin(Protocol):
    def create_signing_key(self, alias: str, alg: str) -> str:
        """A new KMS signing key behind `alias`; its ARN."""
        ...

    def retire(self, key_arn: str, *, delete: bool) -> None: ...


class AuditEntries(Protocol):
    def entry(self, record: AuditRecord) -> Write: ...


@dataclass(frozen=True)
class KeyDeployment:
    """What the deployment says about its keys (the development server's settings, or stack outputs)."""

    alias_prefix: str
    """Empty: this deployment does not rotate keys."""
    alg: str
    token_lifetime: int
    initial_key_arn: str


@dataclass(frozen=True)
class KeyTarget:
    name: str
    keys: KeySetStore
    kms: KeyAdmin
    audit: AuditEntries
    operator: str
    clock: Clock
    deployment: KeyDeployment


@dataclass(frozen=True)
class Rotation:
    new: SigningKey
    previous: SigningKey
    """The key signing until new.activates_at, published until previous.retires_at."""


def key_set(target: KeyTarget) -> KeySet:
    stored = target.keys.get_key_set()
    if stored is not None:
        return stored
    arn = target.deployment.initial_key_arn
    return KeySet.initial(arn, target.deployment.alg, kid_for_key(arn))


def rotate_keys(target: KeyTarget, overlap: int = DEFAULT_OVERLAP) -> Rotation:
    deployment = target.deployment
    if not deployment.alias_prefix:
        raise OperationFailed(
            f"{target.name} does not rotate signing keys: deploy it with -c signingKeyRotation=true "
            "(docs/key-rotation.md)"
        )
    if not MIN_OVERLAP <= overlap <= MAX_OVERLAP:
        raise OperationFailed(
            f"the overlap must be between {MIN_OVERLAP} and {MAX_OVERLAP} seconds (it must exceed twice "
            f"the JWKS cache time plus the functions' key cache), got {overlap}"
        )
    now = int(target.clock.now())
    current = key_set(target)
    pending = current.pending(now)
    if pending is not None:
        raise OperationFailed(
            f"a rotation is in progress: key {pending.kid} starts signing at "
            f"{iso_seconds(pending.activates_at)}; rotate again after that"
        )
    previous = current.signing(now)
    created = datetime.fromtimestamp(now, UTC)
    alias = f"{deployment.alias_prefix}/{created:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    arn = target.kms.create_signing_key(alias, deployment.alg)
    new = SigningKey(
        kid=kid_for_key(arn),
        key_arn=arn,
        alg=deployment.alg,
        activates_at=now + overlap,
        created_at=now,
        alias=alias,
        managed=True,
    )
    rotated = current.rotated(new, now, deployment.token_lifetime)
    retiring = next(k for k in rotated.keys if k.kid == previous.kid)
    record = AuditRecord(
        action="keys.rotate",
        decision="allow",
        at=now,
        operator=target.operator,
        details={
            "new_kid": new.kid,
            "new_key_alias": alias,
            "signs_from": iso_seconds(new.activates_at),
            "previous_kid": previous.kid,
            "previous_unpublished_at": iso_seconds(retiring.retires_at or 0),
        },
    )
    if not target.keys.put_key_set(rotated, target.audit.entry(record)):
        target.kms.retire(arn, delete=True)  # nothing will ever sign with it
        raise OperationFailed("the key set changed while rotating (another rotation?); nothing was changed")
    return Rotation(new=new, previous=retiring)


def list_keys(target: KeyTarget) -> list[dict[str, Any]]:
    now = target.clock.now()
    keys = key_set(target)
    return [
        {
            "kid": k.kid,
            "state": keys.state(k, now),
            "alg": k.alg,
            "signs_from": iso_seconds(k.activates_at) if k.activates_at else "",
            "unpublished_at": iso_seconds(k.retires_at) if k.retires_at else "",
            "alias": k.alias or "",
            "key_arn": k.key_arn,
        }
        for k in sorted(keys.keys, key=lambda k: k.activates_at, reverse=True)
    ]


def retire_keys(target: KeyTarget) -> list[SigningKey]:
    """Keys whose last token expired: disabled in KMS (deletion scheduled for those `rotate` made), then
    marked retired. KMS first: a repeated run after a failed write retires nothing twice."""
    now = int(target.clock.now())
    keys = key_set(target)
    retirable = keys.retirable(now)
    if not retirable:
        return []
    for key in retirable:
        target.kms.retire(key.key_arn, delete=key.managed)
    record = AuditRecord(
        action="keys.retire",
        decision="allow",
        at=now,
        operator=target.operator,
        details={"kids": [k.kid for k in retirable]},
    )
    if not target.keys.put_key_set(keys.with_retired({k.kid for k in retirable}), target.audit.entry(record)):
        raise OperationFailed("the key set changed while retiring keys; run `keys retire` again")
    return list(retirable)
