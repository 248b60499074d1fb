"""Files that go between a client and the blob store directly, through short-lived presigned URLs.

Why: a Lambda function takes and answers at most 6 MB (base64 included), so in AWS a firmware image or a backup
archive larger than about 4 MB cannot pass through the API. Where the blob store hands out URLs (S3), the API
offers one instead of carrying the bytes:

1. the client asks (``offer``): the API answers ``mode: presigned`` with a form to ``POST`` the file to (URL,
   fields, the file's field name, size limit, expiry) and the call to make next (``then``: method, path, body);
2. the client sends the file straight to the store, under ``uploads/<purpose>/<uploadId>``;
3. the client makes the ``then`` call; the API takes the staged file (``take``: present, not larger than the
   limit), checks it as it checks a direct upload, stores it where it belongs and discards the staged copy.

In AWS staged files live in a bucket of their own (``UPLOAD_BUCKET``, ``infra/uploads.py``): it lets the console's
origin post (CORS), keeps no old versions, and removes what nobody finalised a day later. A store without URLs of
its own (the local directory) gets ``mode: direct``: the client sends the file to ``then`` itself, as before.
Downloads work alike: ``download`` is a presigned URL, or ``None`` when the API serves the bytes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from ..core.ports import BlobNotFound, BlobStore, check_blob_key
from .errors import InvalidInput, NotFound, TooLarge

UPLOAD_PREFIX: Final = "uploads/"
UPLOAD_ID: Final = re.compile(r"^[0-9a-f]{32}\Z")


class Uploads:
    def __init__(self, staging: BlobStore, store: BlobStore, *, expires_s: int) -> None:
        self.blobs = staging
        """Where clients put files (in AWS a bucket of its own: CORS for the console, expiring, unversioned)."""
        self.store = store
        """Where files are kept, and fetched from by download URLs."""
        self.expires_s = expires_s

    @staticmethod
    def _key(purpose: str, upload_id: str) -> str:
        if not UPLOAD_ID.match(upload_id or ""):
            raise InvalidInput("uploadId must be the id an upload offer answered", "uploadId")
        return check_blob_key(f"{UPLOAD_PREFIX}{purpose}/{upload_id}")

    def offer(self, purpose: str, *, size: int, max_bytes: int, direct_max_bytes: int, path: str,
              direct_types: tuple[str, ...], done: dict[str, Any]) -> dict[str, Any]:
        """Where to send a file of ``size`` bytes for ``purpose`` (``firmware/<id>``, ``backup``), and what to call
        after: ``path`` with ``done`` plus the ``uploadId`` (presigned), or ``path`` with the file in one of
        ``direct_types`` (direct). ``TooLarge`` when the file cannot go either way."""
        if size > max_bytes:
            raise TooLarge(f"the file is {size} bytes, more than {max_bytes}", "size")
        upload_id = uuid.uuid4().hex
        form = self.blobs.presign_upload(self._key(purpose, upload_id), max_bytes=max_bytes,
                                         expires_s=self.expires_s)
        if form is None:
            if size > direct_max_bytes:
                raise TooLarge(f"the file is {size} bytes, more than {direct_max_bytes}", "size")
            return {"mode": "direct", "maxBytes": direct_max_bytes,
                    "then": {"method": "POST", "path": path, "contentTypes": list(direct_types)}}
        return {"mode": "presigned", "uploadId": upload_id, "maxBytes": form.max_bytes, "expiresIn": form.expires_s,
                "upload": {"method": "POST", "url": form.url, "fields": dict(form.fields),
                           "fileField": form.file_field},
                "then": {"method": "POST", "path": path, "body": {**done, "uploadId": upload_id}}}

    def take(self, purpose: str, upload_id: str, *, max_bytes: int) -> bytes:
        """The staged file's bytes (it stays staged: ``discard`` it once used); ``NotFound`` when it was never sent
        or has expired, ``TooLarge`` (and discarded) when it is over ``max_bytes``."""
        key = self._key(purpose, upload_id)
        try:
            info = self.blobs.info(key)
        except BlobNotFound:
            raise NotFound(f"upload {upload_id!r} not found: not sent yet, already used, or expired",
                           "uploadId") from None
        if info.size > max_bytes:
            self.blobs.delete([key])
            raise TooLarge(f"the uploaded file is {info.size} bytes, more than {max_bytes}", "uploadId")
        try:
            return self.blobs.get(key)
        except BlobNotFound:
            raise NotFound(f"upload {upload_id!r} not found: already used", "uploadId") from None

    def discard(self, purpose: str, upload_id: str) -> None:
        self.blobs.delete([self._key(purpose, upload_id)])

    def download(self, key: str, *, filename: str, content_type: str) -> dict[str, Any] | None:
        """``{url, expiresIn, filename}`` for a blob that exists (``NotFound`` otherwise), or ``None`` when the
        store has no URLs and the API serves the bytes."""
        url = self.store.presign_download(key, expires_s=self.expires_s, filename=filename,
                                          content_type=content_type)
        if url is None:
            return None
        try:
            self.store.info(key)
        except BlobNotFound:
            raise NotFound(f"{filename!r} not found", "name") from None
        return {"url": url, "expiresIn": self.expires_s, "filename": filename}
