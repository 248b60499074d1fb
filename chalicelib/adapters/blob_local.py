"""Blob store in a local directory (``DATA_DIR/blobs``): the local stack's firmware files and backups.

Writes go to a temporary file in the same directory, are fsynced and renamed over the target, so a reader (or a
crash) sees the old file or the new one, never half of one. A directory has no URLs of its own: the presign
operations answer ``None`` and the API carries files itself (the local stack has no payload limit to get around).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..core.ports import BlobInfo, BlobNotFound, PresignedUpload, check_blob_key

TMP_PREFIX = ".tmp-"


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_blob_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self._path(key).unlink()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                pass

    def list(self, prefix: str) -> list[BlobInfo]:
        if not self.root.is_dir():
            return []
        found: list[BlobInfo] = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:  # deleted meanwhile
                        continue
                    found.append(BlobInfo(key, stat.st_size, stat.st_mtime_ns // 1_000_000))
        return sorted(found, key=lambda info: info.key)

    def info(self, key: str) -> BlobInfo:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise BlobNotFound(key) from None
        if not path.is_file():
            raise BlobNotFound(key)
        return BlobInfo(key, stat.st_size, stat.st_mtime_ns // 1_000_000)

    def presign_upload(self, key: str, *, max_bytes: int, expires_s: int) -> PresignedUpload | None:
        check_blob_key(key)
        return None

    def presign_download(self, key: str, *, expires_s: int, filename: str,
                         content_type: str = "application/octet-stream") -> str | None:
        check_blob_key(key)
        return None

    def file_url(self, key: str) -> str:
        """A ``file://`` URL of a blob, for a reader on this machine (the local stack's edge agent fetching a
        firmware file); it does not check that the blob exists."""
        return self._path(key).resolve().as_uri()
