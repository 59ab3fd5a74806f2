"""Driving the just-in-time flow through the handlers: ask, play the stream, read mail, open, decide, poll."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from agent_auth.devserver.local_aws import StreamPump, mailbox
from agent_auth.handlers import access_requests, approvals, token
from tests.conftest import ISSUER, REGION, Deployment
from tests.support import basic, form, load_event, post_event, with_body

POLL_GRANT = "urn:agent-auth:grant-type:access-request"


def ask(d: Deployment, client: str = "support-bot", **fields: str) -> tuple[int, dict[str, Any]]:
    fields = {"scope": "crm.contacts.write", "reason": "Merge duplicate contacts (ticket 4821)", **fields}
    fields = {k: v for k, v in fields.items() if v is not None}
    if client == "billing-agent":
        event = with_body(
            load_event("access_request.json"),
            form(client_id=client, client_secret=d.secrets[client], **fields),
            Authorization=None,
        )
    else:
        event = with_body(
            load_event("access_request.json"), form(**fields), Authorization=basic(client, d.secrets[client])
        )
    result = access_requests.lambda_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def poll(d: Deployment, request_id: str, client: str = "support-bot") -> tuple[int, dict[str, Any]]:
    if client == "billing-agent":
        event = post_event(
            form(
                grant_type=POLL_GRANT,
                request_id=request_id,
                client_id=client,
                client_secret=d.secrets[client],
            )
        )
    else:
        event = post_event(
            form(grant_type=POLL_GRANT, request_id=request_id), Authorization=basic(client, d.secrets[client])
        )
    result = token.lambda_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def client_token(d: Deployment, scope: str, client: str = "support-bot") -> tuple[int, dict[str, Any]]:
    event = post_event(
        form(grant_type="client_credentials", scope=scope), Authorization=basic(client, d.secrets[client])
    )
    result = token.lambda_handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def deliver(d: Deployment) -> list[dict[str, str]]:
    """Play the requests stream to the notifier, as Lambda's event source would; return the mailbox."""
    StreamPump(REGION, d.settings.requests_table).pump_once()
    return mailbox(REGION)


def link_of(mail: dict[str, str]) -> str:
    match = re.search(r"(https://\S+/approvals/\S+)", mail["text"])
    assert match, mail["text"]
    return match.group(1)


@dataclass
class PageResult:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def csrf(self) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert match, self.body
        return match.group(1)

    @property
    def title(self) -> str:
        match = re.search(r"<h1>([^<]*)</h1>", self.body)
        return match.group(1) if match else ""


def _api_path(url_path: str) -> str:
    """The path API Gateway hands the function: without the stage the issuer URL carries."""
    return url_path.removeprefix(urlsplit(ISSUER).path)


def open_link(link: str, method: str = "GET") -> PageResult:
    url = urlsplit(link)
    event = copy.deepcopy(load_event("approval_view.json"))
    query = dict(parse_qsl(url.query))
    request_id = url.path.rsplit("/", 1)[1]
    event.update(
        path=_api_path(url.path),
        httpMethod=method,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()},
        pathParameters={"request_id": request_id},
    )
    result = approvals.lambda_handler(event, None)
    return PageResult(result["statusCode"], result["headers"], result["body"])


def decide(
    link: str,
    decision: str,
    csrf: str | None,
    cookie: str | None = None,
    origin: str | None = "default",
    **overrides: str,
) -> PageResult:
    url = urlsplit(link)
    fields = {**dict(parse_qsl(url.query)), "decision": decision, **overrides}
    if csrf is not None:
        fields["csrf"] = csrf
    event = copy.deepcopy(load_event("approval_decide.json"))
    event.update(path=_api_path(url.path), pathParameters={"request_id": url.path.rsplit("/", 1)[1]})
    headers: dict[str, Any] = {"Cookie": f"__Host-agent-auth-csrf={cookie if cookie is not None else csrf}"}
    if origin != "default":
        headers["Origin"] = origin
    event = with_body(event, urlencode(fields), **headers)
    result = approvals.lambda_handler(event, None)
    return PageResult(result["statusCode"], result["headers"], result["body"])


def approve(link: str) -> PageResult:
    page = open_link(link)
    return decide(link, "approve", page.csrf)
