"""Target 1: AWS calls per token, counted at botocore's single choke point.

Every botocore client (whatever session made it) sends its operations through
`BaseClient._make_api_call`, so wrapping that method counts every call of the handlers' own clients;
wrapping `Session.create_client` catches a client made per request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.session import Session

from common import BenchEnv, TargetResult, call_handler, log

DYNAMODB_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    params: dict[str, Any]
    client: Any = field(compare=False, repr=False)
    """The client that made the call: target 2 replays the call on it."""

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"

    @property
    def table(self) -> str | None:
        return self.params.get("TableName")

    @property
    def conditional(self) -> bool:
        return "ConditionExpression" in self.params


@dataclass
class CallLog:
    calls: list[ApiCall] = field(default_factory=list)
    clients_created: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(call.name for call in self.calls)


@contextmanager
def recording() -> Iterator[CallLog]:
    """Record every AWS API call and every client created while the block runs."""
    record = CallLog()
    make_api_call = BaseClient._make_api_call
    create_client = Session.create_client

    def counting_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        record.calls.append(ApiCall(service, operation_name, dict(api_params), self))
        return make_api_call(self, operation_name, api_params)

    def counting_create(self: Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        record.clients_created.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    with (
        mock.patch.object(BaseClient, "_make_api_call", counting_call),
        mock.patch.object(Session, "create_client", counting_create),
    ):
        yield record


def calls_of_one_request(env: BenchEnv, make_request: Callable[[], Any]) -> CallLog:
    call_handler(env.event(make_request()))  # warm: clients built, keys parsed, lazy imports done
    event = env.event(make_request())
    with recording() as record:
        call_handler(event)
    return record


def judge(env: BenchEnv, method: str, record: CallLog) -> TargetResult:
    settings = env.settings
    counts = record.counts()
    kms_sign = counts["kms:Sign"]
    kms_other = {name: n for name, n in counts.items() if name.startswith("kms:") and name != "kms:Sign"}
    reads = [c for c in record.calls if c.service == "dynamodb" and c.operation in DYNAMODB_READS]
    writes = [c for c in record.calls if c.service == "dynamodb" and c.operation in DYNAMODB_WRITES]
    audit_writes = [c for c in writes if c.operation == "PutItem" and c.table == settings.audit_table]
    jti_writes = [
        c for c in writes if c.operation == "PutItem" and c.table == settings.replay_table and c.conditional
    ]
    other_writes = [c for c in writes if c not in audit_writes and c not in jti_writes]
    other_services = {name: n for name, n in counts.items() if not name.startswith(("kms:", "dynamodb:"))}
    expected_jti = 1 if method == "private_key_jwt" else 0
    passed = (
        kms_sign == 1
        and not kms_other
        and len(reads) <= 2
        and len(audit_writes) == 1
        and len(jti_writes) == expected_jti
        and not other_writes
        and not other_services
        and not record.clients_created
    )
    figure = f"kms:Sign {kms_sign}, DynamoDB reads {len(reads)}, audit writes {len(audit_writes)}"
    if method == "private_key_jwt":
        figure += f", jti writes {len(jti_writes)}"
    extras = {**kms_other, **other_services}
    if other_writes:
        extras["other dynamodb writes"] = len(other_writes)
    if record.clients_created:
        extras["clients created"] = len(record.clients_created)
    note = "unexpected: " + ", ".join(f"{name} {n}" for name, n in sorted(extras.items())) if extras else ""
    bound = "expect 1, <= 2, 1" + (", 1" if method == "private_key_jwt" else "") + ", nothing else"
    return TargetResult(
        number=1,
        title=f"AWS calls per token ({method})",
        figure=figure,
        target=bound,
        passed=passed,
        note=note,
        data={
            "auth_method": method,
            "calls": dict(sorted(counts.items())),
            "sequence": [c.name + (f" {c.table}" if c.table else "") for c in record.calls],
            "kms_sign": kms_sign,
            "dynamodb_reads": len(reads),
            "audit_writes": len(audit_writes),
            "jti_conditional_writes": len(jti_writes),
            "clients_created": len(record.clients_created),
        },
    )


def run(env: BenchEnv) -> list[TargetResult]:
    log("target 1: counting AWS calls of one warm token request per authentication method")
    results = []
    for method, make_request in (
        ("client_secret_basic", env.basic_request),
        ("private_key_jwt", env.jwt_request),
    ):
        record = calls_of_one_request(env, make_request)
        result = judge(env, method, record)
        log(f"  {method}: " + ", ".join(result.data["sequence"]))
        results.append(result)
    return results
