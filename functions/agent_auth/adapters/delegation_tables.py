"""Delegated access in DynamoDB: sign-ins and user sessions, authorization codes, refresh families and
consents, one class per port of oauth/authorize/stores.py.

Every read that can expire compares `expires_at` with the caller's clock: DynamoDB TTL deletes items
up to days late. Every once-only change (completing a sign-in, redeeming a code, rotating a refresh
token) is one conditional write, so of two racing callers exactly one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from agent_auth.adapters.dynamodb import (
    aws_call,
    conditional_write,
    from_item,
    is_conditional_failure,
    numbers_to_int,
    to_item,
)
from agent_auth.adapters.records_codec import (
    code_from_item,
    code_to_data,
    consent_from_item,
    consent_to_data,
    family_from_item,
    family_to_data,
    session_from_item,
    session_to_data,
    sign_in_from_item,
    sign_in_to_data,
)
from agent_auth.errors import DependencyFailure
from agent_auth.ports import Write
from agent_auth.records import AuthorizationCode, Consent, RefreshFamily, SignIn, UserSession

SIGN_IN_PREFIX = "signin#"
SESSION_PREFIX = "session#"
CONSENT_PREFIX = "user#"
CODE_PURGE_AFTER = 86400
"""How long a code outlives its expiry before TTL removes it: long enough to recognise a reuse."""


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return numbers_to_int(from_item(item))  # type: ignore[no-any-return]


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _new_item(table: str, item: dict[str, Any]) -> dict[str, Any]:
    """A Put that never replaces an existing item (ids and hashes are random: a clash is a bug)."""
    return {
        "Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}
    }


def _put_new(client: Any, operation: dict[str, Any], what: str) -> None:
    if not conditional_write(lambda: client.put_item(**operation["Put"])):
        raise DependencyFailure(f"{what}_collision")


def _updated(call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """An UpdateItem with ReturnValues=ALL_NEW: the new item, or None when its condition failed."""
    try:
        with aws_call():
            return call().get("Attributes")
    except DependencyFailure as failure:
        cause = failure.__cause__
        if isinstance(cause, ClientError) and is_conditional_failure(cause):
            return None
        raise


class SignInTable:
    """SignInStore and SessionStore: both short-lived, keyed by a prefix in one table."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put_sign_in(self, sign_in: SignIn) -> None:
        item = {"pk": SIGN_IN_PREFIX + sign_in.sign_in_id, **sign_in_to_data(sign_in)}
        _put_new(self._client, _new_item(self._table, item), "sign_in")

    def get_sign_in(self, sign_in_id: str, now: int) -> SignIn | None:
        item = self._get(SIGN_IN_PREFIX + sign_in_id)
        sign_in = sign_in_from_item(item) if item else None
        return sign_in if sign_in is not None and now < sign_in.expires_at else None

    def complete_sign_in(self, sign_in_id: str, user: str, groups: tuple[str, ...], now: int) -> bool:
        """Once: a second callback for the same upstream state (a replayed redirect) changes nothing."""
        return conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_key(SIGN_IN_PREFIX + sign_in_id),
                UpdateExpression="SET #u = :user, #g = :groups, signed_in_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#u) AND expires_at > :now",
                ExpressionAttributeNames={"#u": "user", "#g": "groups"},  # USER is a reserved word
                ExpressionAttributeValues={
                    ":user": {"S": user},
                    ":groups": {"L": [{"S": g} for g in groups]},
                    ":now": {"N": str(now)},
                },
            )
        )

    def consume_sign_in(self, sign_in_id: str, now: int) -> Write:
        """Deleted when the user decides: the transaction that issues the code fails if the sign-in has
        already ended (a second click) or expired."""
        return Write(
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key(SIGN_IN_PREFIX + sign_in_id),
                    "ConditionExpression": "attribute_exists(pk) AND expires_at > :now",
                    "ExpressionAttributeValues": {":now": {"N": str(now)}},
                }
            }
        )

    def put_session(self, session: UserSession) -> None:
        item = {"pk": SESSION_PREFIX + session.session_hash, **session_to_data(session)}
        _put_new(self._client, _new_item(self._table, item), "session")

    def get_session(self, session_hash: str, now: int) -> UserSession | None:
        item = self._get(SESSION_PREFIX + session_hash)
        session = session_from_item(item) if item else None
        return session if session is not None and now < session.expires_at else None

    def _get(self, pk: str) -> dict[str, Any] | None:
        with aws_call():
            result = self._client.get_item(TableName=self._table, Key=_key(pk), ConsistentRead=True)
        item = result.get("Item")
        return _plain(item) if item else None


class CodeTable:
    """CodeStore: authorization codes by hash (RFC 6749 §4.1.2; the code itself is never stored)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put_code(self, code: AuthorizationCode) -> Write:
        item = {"pk": code.code_hash, "purge_at": code.expires_at + CODE_PURGE_AFTER, **code_to_data(code)}
        return Write(_new_item(self._table, item))

    def redeem_code(self, code_hash: str, now: int) -> AuthorizationCode | None:
        """RFC 6749 §4.1.2: a code is used once. One conditional update marks it redeemed and returns it;
        of concurrent redemptions exactly one gets it."""
        attributes = _updated(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_key(code_hash),
                UpdateExpression="SET #r = :true, redeemed_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#r) AND expires_at > :now",
                ExpressionAttributeNames={"#r": "redeemed"},
                ExpressionAttributeValues={":true": {"BOOL": True}, ":now": {"N": str(now)}},
                ReturnValues="ALL_NEW",
            )
        )
        return code_from_item(_plain(attributes)) if attributes else None

    def get_code(self, code_hash: str) -> AuthorizationCode | None:
        """As stored, even redeemed or expired: a code presented again after its first redemption must
        still revoke what that redemption produced, whenever it comes (until TTL purges it)."""
        with aws_call():
            result = self._client.get_item(TableName=self._table, Key=_key(code_hash), ConsistentRead=True)
        item = result.get("Item")
        return code_from_item(_plain(item)) if item else None


class RefreshTable:
    """RefreshStore: one item per family, holding only the hash of its current token (RFC 9700 §4.14)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put_family(self, family: RefreshFamily) -> Write:
        return Write(_new_item(self._table, {"pk": family.family_id, **family_to_data(family)}))

    def get_family(self, family_id: str) -> RefreshFamily | None:
        """As stored, revoked or expired: the caller tells a reused old token from an unknown one."""
        with aws_call():
            result = self._client.get_item(TableName=self._table, Key=_key(family_id), ConsistentRead=True)
        item = result.get("Item")
        return family_from_item(_plain(item)) if item else None

    def rotate(self, family_id: str, presented_hash: str, new_hash: str, now: int) -> bool:
        """Only the current token of a live family rotates; of two concurrent uses exactly one does."""
        return conditional_write(
            lambda: self._client.update_item(
                TableName=self._table,
                Key=_key(family_id),
                UpdateExpression="SET current_hash = :new, generation = generation + :one, rotated_at = :now",
                ConditionExpression=(
                    "current_hash = :presented AND attribute_not_exists(revoked) AND expires_at > :now"
                ),
                ExpressionAttributeValues={
                    ":new": {"S": new_hash},
                    ":presented": {"S": presented_hash},
                    ":now": {"N": str(now)},
                    ":one": {"N": "1"},
                },
            )
        )

    def revoke_family(self, family_id: str, now: int) -> Write:
        """Idempotent: revoking twice keeps the first time; fails only for an unknown family."""
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(family_id),
                    "UpdateExpression": "SET revoked = :true, revoked_at = if_not_exists(revoked_at, :now), "
                    "withdrawn_at = :now",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
                }
            }
        )


def _consent_key(user: str, client_id: str) -> dict[str, Any]:
    # Lower-cased like the users directory, which matches addresses without case.
    return {"pk": {"S": CONSENT_PREFIX + user.lower()}, "sk": {"S": client_id}}


class ConsentTable:
    """ConsentStore: one item per user and agent; a user's consents are one query."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def get_consent(self, user: str, client_id: str) -> Consent | None:
        """The remembered consent; None when there is none or it was revoked (ask again)."""
        with aws_call():
            result = self._client.get_item(
                TableName=self._table, Key=_consent_key(user, client_id), ConsistentRead=True
            )
        item = result.get("Item")
        consent = consent_from_item(_plain(item)) if item else None
        return consent if consent is not None and not consent.revoked else None

    def put_consent(self, consent: Consent) -> Write:
        """Replaces what the user allowed this agent before (a revoked consent included), but keeps when
        it was last withdrawn: the refresh families that withdrawal ended stay ended."""
        data = {k: v for k, v in consent_to_data(consent).items() if k not in ("revoked", "withdrawn_at")}
        values = to_item({f":v{i}": v for i, v in enumerate(data.values())})
        names = {f"#f{i}": k for i, k in enumerate(data)}
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _consent_key(consent.user, consent.client_id),
                    "UpdateExpression": "SET "
                    + ", ".join(f"#f{i} = :v{i}" for i in range(len(data)))
                    + " REMOVE revoked",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        )

    def list_consents(self, user: str | None = None) -> list[Consent]:
        """One user's (a query) or everyone's (a scan, for operator commands), revoked ones included."""
        if user is not None:
            paginator, params = (
                "query",
                {
                    "KeyConditionExpression": "pk = :pk",
                    "ExpressionAttributeValues": {":pk": {"S": CONSENT_PREFIX + user.lower()}},
                },
            )
        else:
            paginator, params = "scan", {}
        found: list[Consent] = []
        with aws_call():
            for page in self._client.get_paginator(paginator).paginate(
                TableName=self._table, ConsistentRead=True, **params
            ):
                found += [consent_from_item(_plain(i)) for i in page["Items"]]
        return sorted(found, key=lambda c: (c.user, c.client_id))

    def revoke_consent(self, user: str, client_id: str, now: int) -> Write:
        """Fails for a consent that does not exist, so the operator hears about a typo."""
        return Write(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _consent_key(user, client_id),
                    "UpdateExpression": "SET revoked = :true, revoked_at = if_not_exists(revoked_at, :now), "
                    "withdrawn_at = :now",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}, ":now": {"N": str(now)}},
                }
            }
        )
