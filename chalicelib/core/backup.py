"""Backup and restore of the repository (and firmware files) as one zip archive, after MyController v2.

Layout of an archive::

    manifest.json                  {"format": "mycontroller-backup", "version": 1, "appVersion", "createdOn",
                                    "counts": {kind: records}, "firmware": [ids]}
    storage/<kind>/0001.json       a JSON list of up to 50 records of that kind, in id order
    firmware/<id>                  the bytes of a firmware file

Every kind the repository holds is saved, users' bcrypt hashes and service tokens' hashes included (a restore
must give back working logins); handler secrets stay encrypted as stored. Not saved: the JWT signing key (it
is not in the repository), metrics, applied message ids.

An archive is checked completely before anything is changed (``read_archive``): entry names (no ``..``, no
absolute path, only the layout above, known kinds), declared and real sizes against a bound (a zip bomb
declares small and inflates large: reads stop at the bound), the manifest, and that the counts match. A bad
archive raises ``BackupError`` and the repository is untouched.

Restore replaces the content kind by kind: records not in the archive are deleted, the archive's are written.
Revoked tokens are the exception: the archive's are added, none is removed, so a restore never makes a
logged-out token valid again. Who is logged in stays logged in only if their user is in the archive with the
same password hash (a JWT carries a stamp of the password, ``core.auth.password_stamp``); otherwise the next
call answers 401 and the console asks to log in again, with the archive's credentials.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from mycontroller_protocol.ids import ID_PATTERN

from .auth import SESSION_EPOCH_KEY, session_epoch, user_role
from .errors import DomainError
from .model import ID_DEPTH, Kind, Record, now_iso
from .ports import BlobStore, ListQuery, Repository, Sort

FORMAT: Final = "mycontroller-backup"
FORMAT_VERSION: Final = 1
RECORDS_PER_FILE: Final = 50
MAX_ENTRIES: Final = 200_000
MAX_RATIO: Final = 200
"""Largest compression ratio an entry may declare (JSON compresses ~10x; a bomb declares thousands)."""
BACKUP_KINDS: Final = tuple(kind for kind in Kind if kind != Kind.LOGIN_ATTEMPT)
"""Every kind but the login failures (short-lived throttle state, not the installation's data)."""
_KNOWN_KINDS: Final = frozenset(kind.value for kind in BACKUP_KINDS)
MERGE_ONLY_KINDS: Final = frozenset({Kind.REVOKED_TOKEN})
FIRMWARE_PREFIX: Final = "firmware/"
_STORAGE_NAME: Final = re.compile(r"^storage/([a-z_]+)/(\d{4,6})\.json\Z")
_FIRMWARE_NAME: Final = re.compile(r"^firmware/([A-Za-z0-9_\-:@~]{1,128})\Z")

Progress = Callable[[int, int, str], None]
"""``(done, total, message)``: called as work advances."""


class BackupError(DomainError, ValueError):
    """An archive that cannot be restored (bad layout, too big, unknown kind…); nothing was changed."""


def _no_progress(_done: int, _total: int, _message: str) -> None:
    return None


def all_records(repository: Repository, kind: Kind) -> list[Record]:
    return repository.query(kind, ListQuery(sort_by=[Sort("id")], limit=0)).data


# --------------------------------------------------------------------------------------------- making one


def build_archive(repository: Repository, blobs: BlobStore, *, app_version: str, max_bytes: int,
                  progress: Progress = _no_progress) -> tuple[bytes, dict[str, Any]]:
    """The archive's bytes and its manifest. ``BackupError`` when it would exceed ``max_bytes``."""
    records = {kind: all_records(repository, kind) for kind in BACKUP_KINDS}
    firmware_ids = [str(record["id"]) for record in records[Kind.FIRMWARE]]
    total = sum(len(items) for items in records.values()) + len(firmware_ids)
    done = 0
    progress(done, total, "saving records")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for kind, items in records.items():
            for number, start in enumerate(range(0, len(items), RECORDS_PER_FILE), start=1):
                chunk = items[start:start + RECORDS_PER_FILE]
                archive.writestr(f"storage/{kind.value}/{number:04d}.json",
                                 json.dumps(chunk, ensure_ascii=False, separators=(",", ":")))
                done += len(chunk)
                progress(done, total, f"saving {kind.value}")
            if buffer.tell() > max_bytes:
                raise BackupError(f"backup would be more than {max_bytes} bytes")
        saved_firmware = []
        for firmware_id in firmware_ids:
            try:
                data = blobs.get(FIRMWARE_PREFIX + firmware_id)
            except KeyError:  # a firmware record without its file (never uploaded)
                data = None
            if data is not None:
                archive.writestr(FIRMWARE_PREFIX + firmware_id, data)
                saved_firmware.append(firmware_id)
            done += 1
            progress(done, total, "saving firmware files")
            if buffer.tell() > max_bytes:
                raise BackupError(f"backup would be more than {max_bytes} bytes")
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "appVersion": app_version,
                    "createdOn": now_iso(), "counts": {kind.value: len(items) for kind, items in records.items()},
                    "firmware": saved_firmware}
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    data = buffer.getvalue()
    if len(data) > max_bytes:
        raise BackupError(f"backup is {len(data)} bytes, more than {max_bytes}")
    return data, manifest


# --------------------------------------------------------------------------------------------- reading one


@dataclass(slots=True)
class Archive:
    """A checked archive: its manifest, records by kind and firmware files by id."""

    manifest: dict[str, Any]
    records: dict[Kind, list[Record]] = field(default_factory=dict)
    firmware: dict[str, bytes] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(len(items) for items in self.records.values()) + len(self.firmware)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """An entry's bytes, reading at most its declared size (and the budget): an entry that inflates past what it
    declares is refused instead of filling memory."""
    limit = min(info.file_size, budget)
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as error:
        raise BackupError(f"entry {info.filename!r} cannot be read: {error}") from None
    if len(data) > limit:
        raise BackupError(f"entry {info.filename!r} is larger than it declares or than the size limit")
    return data


def _check_record(kind: Kind, record: Any, where: str) -> Record:
    if not isinstance(record, dict):
        raise BackupError(f"{where}: every record must be a JSON object")
    entity_id = record.get("id")
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > 600:
        raise BackupError(f"{where}: a record has no valid 'id'")
    segments = entity_id.split(".")
    depth = ID_DEPTH.get(kind)
    if depth is not None and len(segments) != depth:
        raise BackupError(f"{where}: {kind.value} id {entity_id!r} must have {depth} dotted segment(s)")
    if depth is not None and not all(ID_PATTERN.match(segment) for segment in segments):
        raise BackupError(f"{where}: bad {kind.value} id {entity_id!r}")
    current = record.get("current")
    if isinstance(current, dict) and not isinstance(current.get("sequence", 0), int):
        raise BackupError(f"{where}: {kind.value} {entity_id!r} has a non-integer current.sequence")
    return record


def _check_entry_names(infos: list[zipfile.ZipInfo], max_bytes: int) -> set[str]:
    """Every entry once, inside the archive, not encrypted, part of a backup, and inflating within bounds."""
    if len(infos) > MAX_ENTRIES:
        raise BackupError(f"archive has {len(infos)} entries, more than {MAX_ENTRIES}")
    declared = 0
    names: set[str] = set()
    for info in infos:
        name = info.filename
        if name in names:
            raise BackupError(f"entry {name!r} appears twice")
        names.add(name)
        if (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
                or any(part in ("", ".", "..") for part in name.split("/")) or re.match(r"^[A-Za-z]:", name)):
            raise BackupError(f"entry name {name!r} is not allowed (absolute or leaves the archive)")
        if info.flag_bits & 0x1:
            raise BackupError(f"entry {name!r} is encrypted")
        if name != "manifest.json" and not _STORAGE_NAME.match(name) and not _FIRMWARE_NAME.match(name):
            raise BackupError(f"entry {name!r} is not part of a backup")
        declared += info.file_size
        if info.file_size > max_bytes or declared > max_bytes:
            raise BackupError(f"archive would inflate to more than {max_bytes} bytes")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1_000_000:
            raise BackupError(f"entry {name!r} compresses {info.file_size // info.compress_size}:1, "
                              "too much to be a backup")
    if "manifest.json" not in names:
        raise BackupError("manifest.json is missing")
    return names


def _read_manifest(archive: zipfile.ZipFile, budget: int) -> dict[str, Any]:
    """The manifest: this format, a supported version, counts of known kinds."""
    try:
        manifest = json.loads(_read_bounded(archive, archive.getinfo("manifest.json"), budget))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BackupError("manifest.json is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"manifest.json is not a {FORMAT} manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise BackupError(f"backup format version {version!r} is not supported (1..{FORMAT_VERSION})")
    counts = manifest.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(v, int) and v >= 0 for v in counts.values()):
        raise BackupError("manifest.json: counts must map kinds to record numbers")
    unknown = sorted(set(counts) - _KNOWN_KINDS)
    if unknown:
        raise BackupError(f"manifest.json: unknown kind {unknown[0]!r}")
    return manifest


def _read_storage_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, kind_name: str,
                        budget: int) -> tuple[Kind, list[Record], int]:
    """One ``storage/<kind>/NNNN.json`` entry: its kind, its checked records, and the bytes it took."""
    if kind_name not in _KNOWN_KINDS:
        raise BackupError(f"entry {info.filename!r}: unknown kind {kind_name!r}")
    kind = Kind(kind_name)
    raw = _read_bounded(archive, info, budget)
    try:
        chunk = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise BackupError(f"entry {info.filename!r} is not JSON") from None
    if not isinstance(chunk, list) or len(chunk) > RECORDS_PER_FILE:
        raise BackupError(f"entry {info.filename!r} must be a list of at most {RECORDS_PER_FILE} records")
    return kind, [_check_record(kind, record, info.filename) for record in chunk], len(raw)


def _check_counts(result: Archive) -> None:
    """What the manifest promised is what the archive holds, each id once a kind."""
    counts = result.manifest.get("counts") or {}
    for kind in BACKUP_KINDS:
        expected = counts.get(kind.value, 0)
        found = len(result.records[kind])
        if expected != found:
            raise BackupError(f"manifest says {expected} {kind.value} record(s), the archive holds {found}")
        ids = [record["id"] for record in result.records[kind]]
        if len(set(ids)) != len(ids):
            raise BackupError(f"{kind.value}: an id appears twice")


def read_archive(data: bytes, *, max_bytes: int) -> Archive:
    """Check and read a whole archive, or raise ``BackupError`` saying what is wrong."""
    if len(data) > max_bytes:
        raise BackupError(f"archive is {len(data)} bytes, more than {max_bytes}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BackupError(f"not a zip archive: {error}") from None
    with archive:
        infos = archive.infolist()
        _check_entry_names(infos, max_bytes)
        budget = max_bytes
        result = Archive(_read_manifest(archive, budget), {kind: [] for kind in BACKUP_KINDS})
        for info in sorted(infos, key=lambda i: i.filename):
            storage = _STORAGE_NAME.match(info.filename)
            firmware = _FIRMWARE_NAME.match(info.filename)
            if storage:
                kind, records, size = _read_storage_entry(archive, info, storage.group(1), budget)
                result.records[kind].extend(records)
                budget -= size
            elif firmware:
                raw = _read_bounded(archive, info, budget)
                budget -= len(raw)
                result.firmware[firmware.group(1)] = raw
        _check_counts(result)
    return result


# --------------------------------------------------------------------------------------------- restoring


def restore_archive(repository: Repository, blobs: BlobStore, archive: Archive, *,
                    progress: Progress = _no_progress) -> dict[str, int]:
    """Make the repository hold what the archive holds, kind by kind (revoked tokens: added only); firmware files
    likewise. Records are written as stored, without events. Returns records written per kind.

    Deletes first (parents first; a cascade may take a child the archive has, which the writes then put back),
    then writes parents before children, so a reader never sees children of a gateway the archive lacks."""
    total = archive.total
    done = 0
    progress(done, total, "removing what the backup does not hold")
    for kind in BACKUP_KINDS:
        if kind in MERGE_ONLY_KINDS:
            continue
        keep = {record["id"] for record in archive.records[kind]}
        stale = [str(record["id"]) for record in all_records(repository, kind) if record["id"] not in keep]
        if stale:
            repository.delete(kind, stale)
    written: dict[str, int] = {}
    for kind in BACKUP_KINDS:
        items = archive.records[kind]
        if kind == Kind.USER:
            items = _users_with_sessions_kept_revoked(repository, items)
        for start in range(0, len(items), 100):
            chunk = items[start:start + 100]
            repository.put_many(kind, chunk)
            done += len(chunk)
            progress(done, total, f"restoring {kind.value}")
        written[kind.value] = len(items)
    stale_blobs = [info.key for info in blobs.list(FIRMWARE_PREFIX)
                   if info.key[len(FIRMWARE_PREFIX):] not in archive.firmware]
    if stale_blobs:
        blobs.delete(stale_blobs)
    for firmware_id, data in archive.firmware.items():
        blobs.put(FIRMWARE_PREFIX + firmware_id, data)
        done += 1
        progress(done, total, "restoring firmware files")
    written["firmwareFiles"] = len(archive.firmware)
    return written


def _users_with_sessions_kept_revoked(repository: Repository, users: list[Record]) -> list[Record]:
    """The archive's users with session epochs that never go back: a token revoked since the backup (a password or
    role changed, a logout of every session) must not become valid again by restoring an older epoch. A user whose
    password or role the restore changes gets one more: the sessions opened under the other ones end."""
    stored = {str(user["id"]): user for user in all_records(repository, Kind.USER)}
    kept = []
    for user in users:
        now = stored.get(str(user["id"]))
        if now is None:
            kept.append(user)
            continue
        epoch = max(session_epoch(user), session_epoch(now))
        if now.get("password") != user.get("password") or user_role(now) != user_role(user):
            epoch += 1
        kept.append(user if epoch == session_epoch(user) else {**user, SESSION_EPOCH_KEY: epoch})
    return kept

