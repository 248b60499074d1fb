"""The AWS JWT signing key: an SSM Parameter Store ``SecureString`` (KMS-encrypted), read once per cold start.

When the parameter does not exist yet it is created with a random 64-byte key (hex), ``Overwrite=False``: of two
cold starts racing, one creates it and both then use the stored value. The deployment may also create it itself.
The function's role needs ``ssm:GetParameter`` (and ``ssm:PutParameter`` for the first start) on the parameter
and ``kms:Decrypt``/``kms:Encrypt`` on its key.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from ..core.auth import LoadedOnceSecret

KEY_BYTES: Final = 64


class SsmSigningSecret(LoadedOnceSecret):
    """``SigningSecret`` over one SSM parameter."""

    def __init__(self, parameter: str, region: str | None = None, *, client: Any = None,
                 create: bool = True) -> None:
        if client is None:
            import boto3

            client = boto3.client("ssm", region_name=region)
        super().__init__()
        self.parameter = parameter
        self.create = create
        self._client = client

    def _read(self) -> bytes | None:
        client = self._client
        try:
            answer = client.get_parameter(Name=self.parameter, WithDecryption=True)
        except client.exceptions.ParameterNotFound:
            return None
        value = str(answer["Parameter"]["Value"])
        if len(value) < 32:
            raise RuntimeError(f"SSM parameter {self.parameter} holds fewer than 32 characters; not a signing key")
        return value.encode()

    def _load(self) -> bytes:
        key = self._read()
        if key is not None:
            return key
        if not self.create:
            raise RuntimeError(f"SSM parameter {self.parameter} does not exist")
        client = self._client
        try:
            client.put_parameter(Name=self.parameter, Value=secrets.token_hex(KEY_BYTES), Type="SecureString",
                                 Overwrite=False, Description="MyController JWT signing key")
        except client.exceptions.ParameterAlreadyExists:
            pass
        key = self._read()
        if key is None:
            raise RuntimeError(f"SSM parameter {self.parameter} could not be created")
        return key
