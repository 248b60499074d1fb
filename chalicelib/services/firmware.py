"""Firmware files: storing one, whichever way its bytes came (a direct upload to the API, or a presigned upload
the API then takes from the blob store), so both end the same: the checksum (``sha256:<hex>``) and size computed
here, never taken from the client, the bytes under ``firmware/<id>``, the record created when missing."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from ..core.model import EventType, Firmware, Kind, Record, event, now_iso
from ..core.ports import BlobStore, Repository
from .errors import InvalidInput, validate
from .records import Records

PREFIX: Final = "firmware/"
MAX_NAME_CHARS: Final = 255


def clean_name(name: str, fallback: str) -> str:
    """A display name only (never a path): the last segment, printable, bounded."""
    name = re.split(r"[\\/]", name or "")[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())[:MAX_NAME_CHARS]
    return name or fallback


class FirmwareFiles:
    def __init__(self, repository: Repository, blobs: BlobStore, records: Records) -> None:
        self.repository = repository
        self.blobs = blobs
        self.records = records

    def store(self, firmware_id: str, data: bytes, *, name: str, extra: dict[str, Any] | None = None) -> Record:
        """Keep ``data`` as firmware ``firmware_id``'s file (``extra``: description, labels to set too); the record
        as stored. ``InvalidInput`` for an empty file or a bad record."""
        if not data:
            raise InvalidInput("the firmware file is empty", "file")
        stored = self.repository.get(Kind.FIRMWARE, firmware_id) or {}
        merged = {**stored, "id": firmware_id, **(extra or {})}
        merged.pop("file", None)
        record = validate(Firmware, merged).record()
        record["file"] = {"name": clean_name(name, firmware_id),
                          "checksum": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
        record["modifiedOn"] = now_iso()
        self.blobs.put(PREFIX + firmware_id, data)
        self.repository.put(Kind.FIRMWARE, record)
        self.records.announce([event(EventType.UPDATED if stored else EventType.CREATED, Kind.FIRMWARE, record)])
        return record
