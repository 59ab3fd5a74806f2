"""Races through real HTTP against `agent-auth dev`: the development server keeps the guarantees AWS
gives (one winner per conditional write, one audit record per decision, never a 5xx), although moto's
backend is shared by every request thread and by the CLI's `--dev`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from html.parser import HTMLParser
from typing import Any, TypeVar

import httpx2
import jwt
import pytest

from agent_auth import schema
from agent_auth.adapters.aws import AwsClients
from agent_auth.adapters.jit_tables import GrantTable
from agent_auth.cli.targets import dev_target
from agent_auth.jit.requests import grant_for
from agent_auth.operations import OperationFailed, Target, revoke_grant
from agent_auth.records import AccessRequest
from tests.e2e.conftest import DevServer
from tests.support import JWT_BEARER

T = TypeVar("T")
TRIALS = 20
ASSERTION_USES = 30
BUSY_ROUNDS = 3
BUSY_TIMEOUT = 60
"""Seconds a client waits: dozens of requests at once share two cores, and correctness, not speed, is
what these tests check."""
POLL_GRANT = "urn:agent-auth:grant-type:access-request"
APPROVER, DENIER = "lead@example.com", "oncall@example.com"


class _HiddenFields(HTMLParser):
    """Every hidden input of a page, as a browser would submit it (entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""


def hidden_fields(page: str) -> dict[str, str]:
    parser = _HiddenFields()
    parser.feed(page)
    return parser.fields


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls on their own threads, released together, and return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    failed: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if failed or any(thread.is_alive() for thread in threads):
        raise AssertionError(f"a concurrent call did not complete: {failed!r}")
    return results


def links_for(server: DevServer, request_id: str, *approvers: str) -> list[str]:
    """The approval links the approvers were emailed, from the development mailbox."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = httpx2.get(f"{server.issuer}/_dev/mailbox").json()
        links = {
            m["to"]: next(w for w in m["text"].split() if "/approvals/" in w)
            for m in mails
            if m["to"] in approvers and request_id in m["text"]
        }
        if len(links) == len(approvers):
            return [links[a] for a in approvers]
        time.sleep(0.05)
    raise AssertionError(f"no email to each of {approvers} for {request_id}")


def support_bot(server: DevServer) -> tuple[str, str]:
    return "support-bot", server.credentials["support-bot"]["client_secret"]


def ask(server: DevServer, reason: str) -> str:
    asked = httpx2.post(
        f"{server.issuer}/access-requests",
        auth=support_bot(server),
        data={"scope": "crm.contacts.write", "reason": reason, "duration": "600"},
    )
    assert asked.status_code == 202, asked.text
    return str(asked.json()["request_id"])


def poll(server: DevServer, request_id: str) -> httpx2.Response:
    return httpx2.post(
        f"{server.issuer}/token",
        auth=support_bot(server),
        data={"grant_type": POLL_GRANT, "request_id": request_id},
    )


def audit(server: DevServer, agent: str) -> list[dict[str, Any]]:
    """The agent's audit records, as an operator reads them (`agent-auth audit --dev`)."""
    result = server.cli("audit", "--dev", "--agent", agent, "--json", "--since", "1h", "--limit", "5000")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def decisions_for(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["action"] == "approval.decide" and r.get("details", {}).get("access_request") == request_id
    ]


@pytest.fixture(scope="module")
def target(dev_server: DevServer) -> Target:
    """The development server's tables, read through its local AWS endpoint as the CLI's --dev does."""
    return dev_target(dev_server.workdir)


def decision_posts(
    server: DevServer, request_id: str, browsers: ExitStack
) -> list[Callable[[], httpx2.Response]]:
    """Approve (one approver) and Deny (another), each ready to post from the page its own browser was
    served: its own cookie jar, every hidden field of the form."""
    posts = []
    links = links_for(server, request_id, APPROVER, DENIER)
    for link, decision in zip(links, ("approve", "deny"), strict=True):
        browser = browsers.enter_context(httpx2.Client(timeout=BUSY_TIMEOUT))
        page = browser.get(link)
        assert page.status_code == 200, page.text
        form = {**hidden_fields(page.text), "decision": decision}
        posts.append(lambda b=browser, u=link, f=form: b.post(u, data=f))
    return posts


def decide_at_once(server: DevServer, request_id: str) -> list[httpx2.Response]:
    with ExitStack() as browsers:
        return at_once(*decision_posts(server, request_id, browsers))


def test_approve_and_deny_at_the_same_moment_have_one_winner(dev_server: DevServer, target: Target) -> None:
    outcomes: dict[str, str] = {}
    for trial in range(TRIALS):
        # Given a request waiting for approval, its page open in two approvers' browsers
        request_id = ask(dev_server, f"Race trial {trial}")

        # When one approves and the other denies at the same moment
        approved, denied = decide_at_once(dev_server, request_id)

        # Then exactly one decision won, and both pages say which
        request = target.requests.get_request(request_id)
        assert request is not None
        assert request.status in ("approved", "denied"), f"trial {trial}: nobody won ({request.status})"
        winner = "Approved" if request.status == "approved" else "Denied"
        assert request.decided_by == (APPROVER if request.status == "approved" else DENIER)
        # (the winner's page says 200; the loser met a different decision: 409, showing the outcome)
        won, lost = (approved, denied) if request.status == "approved" else (denied, approved)
        assert won.status_code == 200, f"trial {trial}: {won.status_code} {won.text}"
        assert lost.status_code == 409, f"trial {trial}: {lost.status_code} {lost.text}"
        for response in (approved, denied):
            assert f"<h1>{winner}</h1>" in response.text, f"trial {trial}: a page shows another outcome"

        # And a grant exists if and only if approve won; the token path agrees
        grants = [
            g for g in target.grants.grants_of("support-bot") if g.grant_id == request_id and not g.revoked
        ]
        assert len(grants) == (1 if request.status == "approved" else 0), f"trial {trial}"
        polled = poll(dev_server, request_id)
        if request.status == "approved":
            assert polled.status_code == 200, polled.text
        else:
            assert polled.status_code == 400 and polled.json()["error"] == "access_denied", polled.text
        outcomes[request_id] = request.status

    # And each decision left exactly one audit record: the winner's allow, the loser's refusal
    records = audit(dev_server, "support-bot")
    for request_id, status in outcomes.items():
        decided = decisions_for(records, request_id)
        allowed = [r for r in decided if r["decision"] == "allow"]
        refused = [r for r in decided if r["decision"] == "deny"]
        assert [r["reason"] for r in allowed] == [status], f"{request_id}: {decided}"
        assert [r["reason"] for r in refused] == ["already_decided"], f"{request_id}: {decided}"


def test_one_assertion_used_thirty_times_at_once_wins_once(dev_server: DevServer) -> None:
    # Given one private_key_jwt assertion (RFC 7523 §3: its jti may be used only once)
    token_endpoint = f"{dev_server.issuer}/token"
    assertion = dev_server.key.assertion("signing-agent", token_endpoint)
    form = {
        "grant_type": "client_credentials",
        "scope": "crm.contacts.read",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    before = audit(dev_server, "signing-agent")

    # When it is sent thirty times at the same moment
    with httpx2.Client(timeout=BUSY_TIMEOUT, limits=httpx2.Limits(max_connections=ASSERTION_USES)) as client:
        responses = at_once(*[lambda: client.post(token_endpoint, data=form)] * ASSERTION_USES)

    # Then exactly one request gets a token, every other one is refused (never a 5xx): 401, or 429 once the
    # replays have locked the agent (failed authentications are counted, oauth/throttle.py)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and set(statuses) <= {200, 401, 429}, statuses
    assert all(r.json()["error"] == "invalid_client" for r in responses if r.status_code == 401)

    # And every one of the thirty requests left exactly one audit record
    seen = {r["id"] for r in before}
    records = [r for r in audit(dev_server, "signing-agent") if r["id"] not in seen]
    assert len(records) == ASSERTION_USES, records
    assert len({r["http_request_id"] for r in records}) == ASSERTION_USES
    allowed = [r for r in records if r["decision"] == "allow"]
    refused = {r.get("reason") for r in records if r["decision"] == "deny"}
    assert len(allowed) == 1 and all(r["action"] == "token.issue" for r in records)
    # A replay is refused as such, or (once replays have locked the agent) as too many failures
    assert refused <= {"assertion_replayed", "too_many_failures:agent"} and "assertion_replayed" in refused
    [issued] = [r for r in records if r["decision"] == "allow"]
    [token] = [r.json() for r in responses if r.status_code == 200]
    assert issued["scope_granted"] == token["scope"]


def revoke_attempts(target: Target, request_id: str, times: int = 10) -> list[str]:
    """An operator revoking, again and again, the grant of a request that made none: each attempt is
    a transaction that fails, sent through the local AWS endpoint as `agent-auth grants revoke --dev`."""
    outcomes = []
    for _ in range(times):
        try:
            revoke_grant(target, request_id)
            outcomes.append("revoked")
        except OperationFailed:
            outcomes.append("refused")
    return outcomes


def test_tokens_issued_while_transactions_fail_keep_their_audit_records(
    dev_server: DevServer, target: Target
) -> None:
    """A cancelled transaction changes nothing, and nothing else: moto puts back whole tables when one
    fails, which must never erase what other requests wrote meanwhile, whether the transaction came
    from a request thread or through the local AWS endpoint (the CLI's --dev)."""
    token_endpoint = f"{dev_server.issuer}/token"
    credentials = {
        "client_id": "billing-agent",
        "client_secret": dev_server.credentials["billing-agent"]["client_secret"],
    }
    issued: set[str] = set()
    for busy in range(BUSY_ROUNDS):
        # Given requests waiting for approval, each with Approve and Deny ready to post, and one that
        # made no grant (revoking it is a transaction that fails)
        with (
            ExitStack() as browsers,
            httpx2.Client(timeout=BUSY_TIMEOUT, limits=httpx2.Limits(max_connections=30)) as client,
        ):
            pending = [ask(dev_server, f"Busy round {busy}.{n}") for n in range(3)]
            decisions = [
                post for request_id in pending for post in decision_posts(dev_server, request_id, browsers)
            ]
            no_grant = ask(dev_server, f"Busy round {busy}: nothing to revoke")
            tokens = [
                lambda: client.post(
                    token_endpoint,
                    data={
                        **credentials,
                        "grant_type": "client_credentials",
                        "scope": "billing.invoices.read",
                    },
                )
            ] * 30

            # When the decisions, thirty token requests and an operator's revokes arrive at once
            results = at_once(
                *decisions,
                *tokens,
                *[lambda r=no_grant: revoke_attempts(target, r)] * 3,
            )

        # Then nothing fails on the server's side, and every token was issued
        responses = [r for r in results if isinstance(r, httpx2.Response)]
        assert [r for r in results if not isinstance(r, httpx2.Response)] == [["refused"] * 10] * 3
        assert not [r.status_code for r in responses if r.status_code >= 500]
        token_responses = responses[len(decisions) :]
        assert all(r.status_code == 200 for r in token_responses)
        issued |= {
            jwt.decode(r.json()["access_token"], options={"verify_signature": False})["jti"]
            for r in token_responses
        }

    # And each token issued has its audit record
    audited = {r.get("token_id") for r in audit(dev_server, "billing-agent") if r["decision"] == "allow"}
    assert len(issued) == BUSY_ROUNDS * 30 and issued <= audited, f"{len(issued - audited)} unaudited"


def plant_grant(server: DevServer, request: AccessRequest) -> None:
    """Write a live grant for the request straight into the development server's table, over the
    denial's tombstone, as moto's unserialized races could leave one (a denied request holding a grant)."""
    state = json.loads((server.workdir / ".agent-auth" / "dev.json").read_text())
    clients = AwsClients.with_keys(state["region"], state["aws_endpoint_url"], "testing", "testing")
    put = GrantTable(clients.dynamodb, state["settings"][schema.GRANTS.env_var]).put(
        grant_for(request, int(time.time()))
    )
    unconditional = {k: v for k, v in put.operation["Put"].items() if k != "ConditionExpression"}
    clients.dynamodb.put_item(**unconditional)


def test_revoke_ends_the_grant_of_a_request_whatever_its_status(
    dev_server: DevServer, target: Target
) -> None:
    # Given an approved request, and a denied one that holds a live grant anyway
    approved_id, denied_id = ask(dev_server, "Revoke: approved"), ask(dev_server, "Revoke: denied")
    for request_id, decision, approver in ((approved_id, "approve", APPROVER), (denied_id, "deny", DENIER)):
        [link] = links_for(dev_server, request_id, approver)
        with httpx2.Client() as browser:
            page = browser.get(link)
            decided = browser.post(link, data={**hidden_fields(page.text), "decision": decision})
            assert decided.status_code == 200, decided.text
    denied = target.requests.get_request(denied_id)
    assert denied is not None and denied.status == "denied"
    plant_grant(dev_server, denied)

    for request_id in (approved_id, denied_id):
        # When the operator revokes the request's grant
        revoked = dev_server.cli("grants", "revoke", request_id, "--dev")

        # Then it is ended, whatever the request's status says
        assert revoked.returncode == 0, revoked.stderr
        assert json.loads(revoked.stdout)["grant_id"] == request_id
        [grant] = [g for g in target.grants.grants_of("support-bot") if g.grant_id == request_id]
        assert grant.revoked and not grant.is_usable(int(time.time()))

    # And polling for either gets no token
    polled = poll(dev_server, approved_id)
    assert polled.status_code == 400 and polled.json()["error"] == "invalid_grant", polled.text
    polled = poll(dev_server, denied_id)
    assert polled.status_code == 400 and polled.json()["error"] == "access_denied", polled.text
