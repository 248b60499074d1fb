"""Secrets read from AWS Secrets Manager (``GetSecretValue``): credentials the functions need to call other
services (the InfluxDB token), so that they are never plain environment values a console or a log shows.

Read once per secret and process (a cold start), as settings are: a rotated secret reaches the functions with
their next cold start. The function's role needs ``secretsmanager:GetSecretValue`` on the secret (and
``kms:Decrypt`` on its key when that is a customer managed key, not ``aws/secretsmanager``).
"""

from __future__ import annotations

import threading
from typing import Any

from ..core.ports import SecretError


class SecretsManagerValues:
    """``SecretValues`` over Secrets Manager; ``name`` is a secret's name or ARN."""

    def __init__(self, region: str | None = None, *, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", region_name=region)
        self._client = client
        self._read: dict[str, str] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> str:
        with self._lock:
            if name in self._read:
                return self._read[name]
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._client.get_secret_value(SecretId=name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise SecretError(f"secret {name!r} could not be read: {code}") from None
        except BotoCoreError as error:
            raise SecretError(f"secret {name!r} could not be read: {type(error).__name__}") from None
        text = answer.get("SecretString")
        if not isinstance(text, str) or not text:
            raise SecretError(f"secret {name!r} has no text value (SecretString)")
        with self._lock:
            self._read[name] = text
        return text
