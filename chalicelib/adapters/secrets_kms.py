"""``SecretBox`` over AWS KMS: ``Encrypt``/``Decrypt`` with one symmetric key and an encryption context.

Handler secrets are small (tokens, passwords), well under KMS's 4 KB plaintext limit, so no envelope encryption
is needed. The context (handler id, key path) is bound into the ciphertext and logged by CloudTrail, never the
secret. Errors of the key service are ``SecretError`` (the handler function retries them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.core.ports import SecretError


class KmsSecretBox:
    def __init__(self, key_id: str, *, region: str | None = None, client: Any = None) -> None:
        if not key_id:
            raise SecretError("KMS_KEY_ID is required for SECRETS=kms")
        self.key_id = key_id
        self.client = client or boto3.client("kms", region_name=region)

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        try:
            response = self.client.encrypt(KeyId=self.key_id, Plaintext=plaintext.encode(),
                                           EncryptionContext=context)
        except (ClientError, BotoCoreError) as error:
            raise SecretError(f"KMS encrypt failed: {type(error).__name__}: {error}") from None
        return base64.b64encode(response["CiphertextBlob"]).decode("ascii")

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        try:
            blob = base64.b64decode(ciphertext, validate=True)
            response = self.client.decrypt(CiphertextBlob=blob, EncryptionContext=context, KeyId=self.key_id)
            return bytes(response["Plaintext"]).decode()
        except (ClientError, BotoCoreError, binascii.Error, UnicodeDecodeError) as error:
            raise SecretError(f"KMS decrypt failed: {type(error).__name__}") from None
