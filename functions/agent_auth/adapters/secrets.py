"""Secrets Manager: the upstream provider's client secret, read once per execution environment.

The secret never travels in the function's environment (CloudFormation and the Lambda console show
environment variables to anyone who may read the function); the stack names it by ARN and grants
secretsmanager:GetSecretValue on exactly that secret to the authorize function alone.
"""

from __future__ import annotations

from typing import Any

from agent_auth.adapters.dynamodb import aws_call
from agent_auth.errors import DependencyFailure


class SecretString:
    """One secret's SecretString. A failed read is not cached: the next request tries again."""

    def __init__(self, client: Any, secret_arn: str) -> None:
        self._client = client
        self._secret_arn = secret_arn
        self._value: str | None = None

    def value(self) -> str:
        if self._value is None:
            with aws_call():
                result = self._client.get_secret_value(SecretId=self._secret_arn)
            value = result.get("SecretString")
            if not isinstance(value, str) or not value.strip():
                # A binary or empty secret is a deployment mistake; answered as unavailable, never guessed.
                raise DependencyFailure("EmptySecret")
            self._value = value.strip()
        return self._value

    def __repr__(self) -> str:
        return f"SecretString({self._secret_arn!r})"
