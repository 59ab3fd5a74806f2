"""AWS clients, made once per execution environment, lazily, and handed to the adapters.

Timeouts are short and retries few: a slow KMS or DynamoDB should produce a quick, clean 503 rather than
hold a token request for the SDK's default 60 seconds.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=3,
    retries={"mode": "standard", "max_attempts": 2},
    tcp_keepalive=True,
)


class AwsClients:
    def __init__(
        self, region: str, endpoint_url: str | None = None, session: boto3.session.Session | None = None
    ):
        self._session = session or boto3.session.Session(region_name=region)
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def region(self) -> str:
        return self._region

    def _client(self, service: str) -> Any:
        return self._session.client(
            service, region_name=self._region, endpoint_url=self._endpoint_url, config=CLIENT_CONFIG
        )

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @cached_property
    def kms(self) -> Any:
        return self._client("kms")

    @cached_property
    def sesv2(self) -> Any:
        return self._client("sesv2")

    @cached_property
    def ses(self) -> Any:
        """SES v1: only to verify the development sender identity."""
        return self._client("ses")

    @cached_property
    def secretsmanager(self) -> Any:
        return self._client("secretsmanager")

    @cached_property
    def cloudformation(self) -> Any:
        return self._client("cloudformation")

    @cached_property
    def sts(self) -> Any:
        return self._client("sts")

    @classmethod
    def with_keys(cls, region: str, endpoint_url: str, access_key: str, secret_key: str) -> AwsClients:
        """Clients for an endpoint with its own fixed credentials (the development server's moto)."""
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        return cls(region, endpoint_url=endpoint_url, session=session)

    @classmethod
    def default_region(cls, region: str | None = None) -> AwsClients | None:
        """Clients from the operator's own credentials; None when no region is configured."""
        session = boto3.session.Session(region_name=region)
        return cls(session.region_name, session=session) if session.region_name else None
