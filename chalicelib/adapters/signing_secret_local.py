"""The local stack's JWT signing key: 64 random bytes in ``<DATA_DIR>/jwt-secret``, mode 0600.

Created on first use with ``O_EXCL``, so two processes starting together agree on one key (the loser reads the
winner's). Tokens survive restarts because the key does; deleting the file logs everybody out.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Final

from ..core.auth import LoadedOnceSecret

KEY_BYTES: Final = 64
FILE_NAME: Final = "jwt-secret"


class LocalSigningSecret(LoadedOnceSecret):
    """``SigningSecret`` over a file; the key is read once and kept in memory."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def _load(self) -> bytes:
        return self._read_or_create()

    def _read_or_create(self) -> bytes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read()
        key = secrets.token_bytes(KEY_BYTES)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return key

    def _read(self) -> bytes:
        for _ in range(50):  # another process may be between creating and writing the file
            key = self.path.read_bytes()
            if len(key) >= 32:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{self.path}: signing secret is shorter than 32 bytes; delete the file to make a new one")
