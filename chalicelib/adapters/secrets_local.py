"""``SecretBox`` for the local stack: AES-256-GCM with a key file in the data directory.

The key (32 random bytes) is created on first use as ``<DATA_DIR>/secret.key`` with mode 0600, never logged, and
read on later starts; losing it makes the stored secrets unreadable (handlers then fail with a clear message and
their secrets must be entered again). Each ciphertext is ``base64(nonce ‖ ciphertext ‖ tag)`` with a fresh 96-bit
nonce; the context (handler id, key path) is the associated data, so a ciphertext moved elsewhere fails to open.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.core.ports import SecretError

log = logging.getLogger(__name__)

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12


def load_or_create_key(path: Path) -> bytes:
    """The key at ``path``; created 0600 (atomically, so two processes agree on one key) when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(KEY_BYTES))
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SecretError(f"{path} is not a {KEY_BYTES}-byte key; restore it or remove it (stored secrets are then "
                          "lost and must be entered again)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); chmod 600 it", path, mode)
    return key


def _aad(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


class LocalSecretBox:
    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._aead = AESGCM(load_or_create_key(key_path))

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _aad(context))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        try:
            raw = base64.b64decode(ciphertext, validate=True)
            if len(raw) <= NONCE_BYTES:
                raise SecretError("ciphertext too short")
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(context)).decode()
        except (InvalidTag, binascii.Error, UnicodeDecodeError, ValueError) as error:
            raise SecretError(f"cannot decrypt a secret with the key in {self.key_path} "
                              f"({type(error).__name__}): was the key replaced?") from None
