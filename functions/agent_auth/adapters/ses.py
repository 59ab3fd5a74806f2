"""Sending email through SES (v2 SendEmail with a raw MIME message we build ourselves)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from agent_auth.adapters.dynamodb import aws_call


class SesMailer:
    def __init__(self, client: Any) -> None:
        self._client = client

    def send(self, message: EmailMessage) -> None:
        with aws_call():
            self._client.send_email(
                FromEmailAddress=str(message["From"]),
                Destination={"ToAddresses": [str(message["To"])]},
                Content={"Raw": {"Data": message.as_bytes()}},
            )
