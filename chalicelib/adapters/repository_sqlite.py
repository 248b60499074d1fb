"""The local stack's repository: one SQLite file in WAL mode, every record also held in memory for reading.

Durability. Every write call is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), committed before the call
returns, so an API write is on disk before it is answered; ``transaction()`` makes one of several calls (the
processor stores an ingest batch in one). ``journal_mode=WAL`` with ``synchronous=FULL``: each commit appends its
pages to the write-ahead log and fsyncs it. With ``NORMAL`` the log is fsynced only at checkpoints, which keeps a
commit through ``kill -9`` (the bytes are in the OS's page cache) but not through a power cut or a kernel crash;
``FULL`` keeps it through those too, for one fsync a commit (a few ms on an SD card or an SSD, paid once per API
write or per ingest batch, not per message). A crash at any moment leaves the last committed transaction: SQLite
ignores a log tail without its commit frame, so nothing half-written is read back.

Reads. The file is the truth; a copy of every record is held in dicts (as the memory repository holds them), so
``get``/``get_many`` cost a dict lookup and hand out the very objects written (the processor's fast path checks
identity), lists filter in Python (``core/query.py``), and no read waits for a writer. A write changes the dicts
after its commit; inside ``transaction()`` it changes them at once (its own later reads must see it) and the
changes are undone if the transaction rolls back, so other threads may see a transaction's writes for the few ms
before its commit. One process owns the file (an exclusive ``flock`` on ``<file>.lock``): a second one would read
a stale copy, so it is refused (``RepositoryInUseError``).

Writers. One at a time (a lock, and ``BEGIN IMMEDIATE``); a thread inside ``transaction()`` holds the others back
until it ends. Versions (``ports.Repository``): one counter for the file, its next value given to each record
written and stored beside it (``records.version``), so a record deleted and made again never reuses a version.

Tables: ``records(kind, id, version, doc)`` (the record as compact JSON), ``seen_streams(stream, hw, runs, used)``
(edge message ids as a high-water mark and runs per stream, ``core/seen.py``; ``used`` orders them for forgetting
the least recently marked beyond ``seen_streams``), ``seen_ids(id, n)`` (other ids one by one, the oldest forgotten
beyond ``seen_capacity``), ``meta(key, value)`` (format, schema and migration notes).

Migration: opened with ``migrate_from`` (the memory repository's dump directory, ``DATA_DIR/repository``) when that
holds a dump and the file has no records yet, the dump is read (with the memory repository's own checks) and
copied in one transaction, and the directory is renamed ``repository.migrated`` after the commit. A crash before
the commit leaves the dump where it was, and the next start migrates again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from chalicelib.core.freshness import is_stale
from chalicelib.core.model import CHILD_KIND, DEVICE_KINDS, PARENT_KIND, Kind, Record
from chalicelib.core.ports import ConditionFailed, ListQuery, ListResult, Versioned
from chalicelib.core.query import apply_query
from chalicelib.core.record_ids import checked_id
from chalicelib.core.seen import (
    Run,
    consecutive_run,
    decode_runs,
    encode_runs,
    group_by_stream,
    merge_seqs,
    runs_contain,
    split_message_id,
)

from .errors import AdapterError
from .files import fsync_dir

log = logging.getLogger(__name__)

FORMAT: Final = "mycontroller-sqlite-repository"
SCHEMA: Final = "1"
FILE_NAME: Final = "repository.sqlite3"
MIGRATED_SUFFIX: Final = ".migrated"
DEFAULT_SEEN_CAPACITY: Final = 1_000_000
DEFAULT_SEEN_STREAMS: Final = 10_000
SEEN_ABOVE_MAX_CHARS: Final = 4096
SYNCHRONOUS: Final = ("FULL", "NORMAL", "EXTRA")
_SCHEMA_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, "
    "doc TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS seen_streams (stream TEXT PRIMARY KEY, hw INTEGER NOT NULL, runs TEXT NOT NULL, "
    "used INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS seen_ids (id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
)
_UPSERT: Final = ("INSERT INTO records (kind, id, version, doc) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, doc = excluded.doc")

_encode = msgspec.json.Encoder().encode
"""Records as compact JSON (ten times json.dumps' speed: an ingest batch writes hundreds). JSON has no NaN or
infinity: such a float (which no validated record holds) would be stored as null."""
_decode = msgspec.json.decode


class SqliteRepositoryError(AdapterError, RuntimeError):
    """The file cannot be used (not ours, a newer schema, unreadable), a migration failed, or a write came after
    ``close()``; the message says which."""


class RepositoryInUseError(AdapterError, RuntimeError):
    """Another process has the file open: a second stack on one ``DATA_DIR`` would work on a stale copy."""


def _lock_file(path: Path) -> IO[bytes] | None:
    """Hold an exclusive lock on ``path`` for as long as the returned file is open (no-op without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RepositoryInUseError(f"{path.with_suffix('')} is in use by another process (a second local stack on "
                                   "the same DATA_DIR?)") from None
    return handle


Undo = Callable[[], None]


class SqliteRepository:
    """``Repository`` on one SQLite file (see the module docstring). ``synchronous`` is ``FULL`` (the default,
    commits survive power cuts), ``EXTRA`` or ``NORMAL`` (commits survive a killed process only)."""

    def __init__(self, path: str | Path, *, migrate_from: str | Path | None = None, synchronous: str = "FULL",
                 seen_capacity: int = DEFAULT_SEEN_CAPACITY, seen_streams: int = DEFAULT_SEEN_STREAMS) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._data: dict[Kind, dict[str, Record]] = {kind: {} for kind in Kind}
        self._versions: dict[Kind, dict[str, tuple[Record, int]]] = {kind: {} for kind in Kind}
        """Per kind: id → (record, version), one tuple so that a lock-free read gets a pair one write made."""
        self._index: dict[Kind, dict[str, dict[str, None]]] = {kind: {} for kind in PARENT_KIND}
        self._version = 0
        self._streams: dict[str, tuple[int, tuple[Run, ...]]] = {}
        """Edge stream → (hw, runs above it); least recently marked first."""
        self._stream_used = 0
        self._plain: dict[str, int] = {}
        """Plain message ids → insertion number, oldest first."""
        self._plain_n = 0
        self._seen_capacity = max(1, int(seen_capacity))
        self._stream_capacity = max(1, int(seen_streams))
        self._seen_lock = threading.Lock()
        self._lock = threading.RLock()
        """Held by the writing thread for a whole write call or ``transaction()``."""
        self._undo: list[Undo] | None = None
        """The open ``transaction()``'s undo log of memory changes (None when none is open)."""
        self._closed = False
        self._lock_handle = _lock_file(self.path.with_name(self.path.name + ".lock"))
        created = not self.path.exists()
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            self._release_lock()
            raise SqliteRepositoryError(f"{self.path}: cannot be opened ({error})") from None
        try:
            self._synchronous = synchronous.upper()
            self._open(created, self._synchronous)
            self._load()
            if migrate_from is not None:
                self._migrate(Path(migrate_from))
        except BaseException:
            self._db.close()
            self._release_lock()
            raise

    # ----------------------------------------------------------------------------------------- opening

    def _open(self, created: bool, synchronous: str) -> None:
        db = self._db
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SqliteRepositoryError(f"{self.path}: WAL mode refused (journal mode {mode})")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=10000")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise SqliteRepositoryError(f"{self.path}: not a {FORMAT} file (tables {sorted(tables)})")
            if "meta" in tables:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if meta.get("format") != FORMAT:
                    raise SqliteRepositoryError(f"{self.path}: not a {FORMAT} file")
                if meta.get("schema") != SCHEMA:
                    raise SqliteRepositoryError(f"{self.path}: schema {meta.get('schema')!r} is not {SCHEMA} "
                                                "(written by another version of MyController)")
                return
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA_SQL:
                db.execute(statement)
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [("format", FORMAT), ("schema", SCHEMA), ("created", _now())])
            db.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            raise SqliteRepositoryError(f"{self.path}: cannot be read as a SQLite database ({error})") from None
        if created:
            fsync_dir(self.path.parent)  # the new file's name is durable too

    def _load(self) -> None:
        db = self._db
        kinds = {kind.value: kind for kind in Kind}
        try:
            for kind_name, entity_id, version, doc in db.execute("SELECT kind, id, version, doc FROM records"):
                kind = kinds.get(kind_name)
                if kind is None:
                    raise SqliteRepositoryError(f"{self.path}: record {entity_id!r} of unknown kind {kind_name!r}")
                try:
                    record = _decode(doc)
                except msgspec.DecodeError as error:
                    raise SqliteRepositoryError(f"{self.path}: {kind_name} {entity_id!r} is not JSON ({error})") \
                        from None
                self._set(kind, entity_id, record, int(version))
                self._version = max(self._version, int(version))
            for stream, hw, runs, used in db.execute("SELECT stream, hw, runs, used FROM seen_streams ORDER BY used"):
                self._streams[stream] = (int(hw), decode_runs(int(hw), runs))
                self._stream_used = max(self._stream_used, int(used))
            for message_id, n in db.execute("SELECT id, n FROM seen_ids ORDER BY n"):
                self._plain[message_id] = int(n)
                self._plain_n = max(self._plain_n, int(n))
        except sqlite3.DatabaseError as error:
            raise SqliteRepositoryError(f"{self.path}: cannot be read ({error})") from None

    def _migrate(self, directory: Path) -> None:
        """Copy a memory repository's dump in (see the module docstring); nothing to do without one, or when this
        file holds records already."""
        if not (directory / "manifest.json").is_file():
            return
        if any(self._data.values()):
            log.warning("%s holds records already: the dump in %s is not migrated (move it away to silence this)",
                        self.path, directory)
            return
        from .repository_memory import MANIFEST, SEEN, MemoryRepository, RepositoryLoadError

        try:
            dump = MemoryRepository(directory, dump_interval_s=0)
        except RepositoryLoadError as error:
            raise SqliteRepositoryError(f"cannot migrate {directory}: {error}") from None
        try:
            records = {kind: dump.query(kind, ListQuery(limit=0)).data for kind in Kind}
        finally:
            dump.close()
        manifest = json.loads((directory / MANIFEST).read_bytes())
        seen_name = (manifest.get("files") or {}).get(SEEN)
        seen_doc: dict[str, Any] = json.loads((directory / seen_name).read_bytes()) if seen_name else {}
        streams: dict[str, Any] = seen_doc.get("streams") or {}
        plain = [message_id for message_id in seen_doc.get("ids") or [] if split_message_id(message_id) is None]
        stream_ids = [message_id for message_id in seen_doc.get("ids") or [] if split_message_id(message_id)]
        count = sum(map(len, records.values()))
        with self.transaction():
            for kind, kind_records in records.items():
                if kind_records:
                    self.put_many(kind, kind_records)
            for stream, (hw, text) in streams.items():
                self._mark_stream_state(stream, int(hw), decode_runs(int(hw), text))
            if stream_ids or plain:
                self.mark_seen([*stream_ids, *plain])
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated', ?)",
                             (f"{directory} at {_now()}: {count} records",))
        target = directory.with_name(directory.name + MIGRATED_SUFFIX)
        try:
            directory.rename(target)
        except OSError as error:
            log.warning("migrated %s into %s but could not rename it to %s: %s", directory, self.path, target, error)
        log.warning("migrated %d records from the memory repository's dump %s into %s (the dump is kept as %s)",
                    count, directory, self.path, target)

    # ----------------------------------------------------------------------------------------- reads

    def get(self, kind: Kind, entity_id: str) -> Record | None:
        return self._data[kind].get(entity_id)

    def get_many(self, kind: Kind, ids: Iterable[str]) -> dict[str, Record]:
        get = self._data[kind].get
        found: dict[str, Record] = {}
        for entity_id in ids:
            record = get(entity_id)
            if record is not None:
                found[entity_id] = record
        return found

    def get_versioned(self, kind: Kind, entity_id: str) -> Versioned:
        return self._versions[kind].get(entity_id, (None, 0))

    def get_many_versioned(self, kind: Kind, ids: Iterable[str], *, consistent: bool = True
                           ) -> dict[str, tuple[Record, int]]:
        get = self._versions[kind].get
        found: dict[str, tuple[Record, int]] = {}
        for entity_id in ids:
            pair = get(entity_id)
            if pair is not None:
                found[entity_id] = pair
        return found

    def query(self, kind: Kind, query: ListQuery) -> ListResult:
        return apply_query(list(self._data[kind].values()), query)

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        child_kind = CHILD_KIND.get(kind)
        if child_kind is None:
            return []
        store = self._data[child_kind]
        ids = sorted(self._index[child_kind].get(parent_id, {}).copy())
        return [record for record in map(store.get, ids) if record is not None]

    def seen(self, message_ids: Sequence[str]) -> set[str]:
        with self._seen_lock:
            run = consecutive_run(message_ids)
            if run is not None:  # the usual batch: one stream's next seqs, in order
                stream, first, last = run
                state = self._streams.get(stream)
                if state is None:
                    return set()
                hw, runs = state
                if first > hw and not any(start <= last and end >= first for start, end in runs):
                    return set()
                return {m for seq, m in enumerate(message_ids, first) if runs_contain(hw, runs, seq)}
            found: set[str] = set()
            for message_id in message_ids:
                parsed = split_message_id(message_id)
                if parsed is None:
                    if message_id in self._plain:
                        found.add(message_id)
                elif (state := self._streams.get(parsed[0])) is not None and runs_contain(*state, parsed[1]):
                    found.add(message_id)
            return found

    # ----------------------------------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction for every write this thread makes inside (nested ones join the outer one);
        other writers wait until it ends."""
        with self._lock:
            if self._undo is not None:  # nested: the outer one commits
                yield
                return
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            undo: list[Undo] = []
            self._undo = undo
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._undo = None
                self._rollback(undo)
                raise
            finally:
                self._undo = None

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[list[Callable[[], Undo]]]:
        """One write call: the caller runs its SQL and appends its memory changes (each returning its undo) to the
        list given; they are applied after the commit, or at once inside ``transaction()`` (then undone with it).
        A failing call inside a transaction is rolled back to its savepoint, so the transaction can go on.
        ``durable=False`` commits without the fsync (``synchronous=NORMAL``): the next durable commit syncs it."""
        with self._lock:
            self._check_open()
            changes: list[Callable[[], Undo]] = []
            db = self._db
            undo = self._undo
            if undo is None:
                relaxed = not durable and self._synchronous != "NORMAL"
                if relaxed:
                    db.execute("PRAGMA synchronous=NORMAL")
                try:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        yield changes
                        db.execute("COMMIT")
                    except BaseException:
                        self._rollback([])
                        raise
                finally:
                    if relaxed:
                        db.execute(f"PRAGMA synchronous={self._synchronous}")
                for change in changes:
                    change()
                return
            db.execute("SAVEPOINT write_call")
            try:
                yield changes
            except BaseException:
                db.execute("ROLLBACK TO write_call")
                db.execute("RELEASE write_call")
                raise
            db.execute("RELEASE write_call")
            for change in changes:
                undo.append(change())

    def _rollback(self, undo: list[Undo]) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback of %s failed", self.path)
        for step in reversed(undo):
            step()

    def _check_open(self) -> None:
        if self._closed:
            raise SqliteRepositoryError(f"{self.path}: repository is closed; the write would be lost")

    # ----------------------------------------------------------------------------------------- memory changes

    def _set(self, kind: Kind, entity_id: str, record: Record, version: int) -> Undo:
        """Hold ``record`` as ``entity_id``'s; returns what puts the previous state back."""
        store, versions = self._data[kind], self._versions[kind]
        previous = versions.get(entity_id)
        store[entity_id] = record
        versions[entity_id] = (record, version)
        index = self._index.get(kind)
        if previous is None and index is not None:
            parent = entity_id.rpartition(".")[0]
            siblings = index.get(parent)
            if siblings is None:
                index[parent] = {entity_id: None}
            else:
                siblings[entity_id] = None
        if previous is None:
            return lambda: self._forget(kind, entity_id)
        return lambda: self._restore(kind, entity_id, previous)

    def _set_many(self, kind: Kind, written: dict[str, tuple[Record, int]]) -> Undo:
        """``_set`` of each record a put wrote (one closure for the call, not one per record)."""
        store, versions = self._data[kind], self._versions[kind]
        index = self._index.get(kind)
        previous: list[tuple[str, tuple[Record, int] | None]] = []
        for entity_id, pair in written.items():
            old = versions.get(entity_id)
            previous.append((entity_id, old))
            store[entity_id] = pair[0]
            versions[entity_id] = pair
            if old is None and index is not None:
                parent = entity_id.rpartition(".")[0]
                siblings = index.get(parent)
                if siblings is None:
                    index[parent] = {entity_id: None}
                else:
                    siblings[entity_id] = None

        def undo() -> None:
            for entity_id, old in reversed(previous):
                if old is None:
                    self._remove(kind, entity_id)
                else:
                    self._set(kind, entity_id, *old)
        return undo

    def _restore(self, kind: Kind, entity_id: str, previous: tuple[Record, int]) -> None:
        self._set(kind, entity_id, *previous)

    def _forget(self, kind: Kind, entity_id: str) -> None:
        self._remove(kind, entity_id)

    def _remove(self, kind: Kind, entity_id: str) -> Undo:
        previous = self._versions[kind].pop(entity_id, None)
        self._data[kind].pop(entity_id, None)
        if previous is None:
            return lambda: None
        index = self._index.get(kind)
        if index is not None:
            parent = entity_id.rpartition(".")[0]
            siblings = index.get(parent)
            if siblings is not None:
                siblings.pop(entity_id, None)
                if not siblings:
                    del index[parent]
        return lambda: self._restore(kind, entity_id, previous)

    # ----------------------------------------------------------------------------------------- writes

    def put(self, kind: Kind, record: Record, *, expected_version: int | None = None) -> None:
        entity_id = checked_id(kind, record)
        self.put_many(kind, (record,), expected_versions=None if expected_version is None
                      else {entity_id: expected_version})

    def put_many(self, kind: Kind, records: Sequence[Record], *, if_newer: bool = False,
                 expected_versions: Mapping[str, int] | None = None) -> list[str]:
        """All of the call's records in one transaction (or none of them: a record without ``id`` fails the
        call). Stored as given (no copy): records are immutable once written."""
        if not records:
            return []
        if expected_versions:
            conditional = [r["id"] for r in records if r["id"] in expected_versions]
            if len(set(conditional)) != len(conditional):
                raise ValueError("an id with an expected version may appear once in a put_many")
        stale: list[str] = []
        conflicts: list[str] = []
        with self._write() as changes:
            versions = self._versions[kind]
            pending: dict[str, tuple[Record, int]] = {}
            """What this call wrote so far: a repeat of an id sees it."""
            version = self._version
            rows: list[tuple[str, str, int, str]] = []
            value = kind.value
            for record in records:
                entity_id = record["id"]
                current = pending.get(entity_id) or versions.get(entity_id)
                if expected_versions is not None and entity_id in expected_versions \
                        and (current[1] if current is not None else 0) != expected_versions[entity_id]:
                    conflicts.append(entity_id)
                    continue
                if if_newer and current is not None and is_stale(current[0], record):
                    stale.append(entity_id)
                    continue
                version += 1
                pending[entity_id] = (record, version)
                rows.append((value, entity_id, version, _encode(record).decode()))
            if rows:
                self._db.executemany(_UPSERT, rows)
            self._version = version
            if pending:
                changes.append(partial(self._set_many, kind, pending))
        if conflicts:
            raise ConditionFailed(f"{kind.value} {', '.join(conflicts[:5])}: changed since read", conflicts, stale)
        return stale

    def delete(self, kind: Kind, ids: Sequence[str]) -> list[tuple[Kind, Record]]:
        """Cascades through the parent index, as the memory repository does (orphans included); parents before
        children, each level in id order; one transaction."""
        with self._lock:  # (what is found and what is deleted: one writer's view)
            return self._delete(kind, ids)

    def _delete(self, kind: Kind, ids: Sequence[str]) -> list[tuple[Kind, Record]]:
        deleted: list[tuple[Kind, Record]] = []
        taken: set[tuple[Kind, str]] = set()
        for entity_id in dict.fromkeys(ids):
            record = self._data[kind].get(entity_id)
            if record is not None and (kind, entity_id) not in taken:
                deleted.append((kind, record))
                taken.add((kind, entity_id))
            if kind not in CHILD_KIND:
                continue
            prefix = entity_id + "."
            for below in DEVICE_KINDS[DEVICE_KINDS.index(kind) + 1:]:
                index = self._index[below]
                parents = [p for p in list(index) if p == entity_id or p.startswith(prefix)]
                for child_id in sorted(c for p in parents for c in list(index.get(p, ()))):
                    child = self._data[below].get(child_id)
                    if child is not None and (below, child_id) not in taken:
                        deleted.append((below, child))
                        taken.add((below, child_id))
        if not deleted:
            return []
        with self._write() as changes:
            self._db.executemany("DELETE FROM records WHERE kind = ? AND id = ?",
                                 [(k.value, r["id"]) for k, r in deleted])
            for k, r in deleted:
                changes.append(partial(self._remove, k, r["id"]))
        return deleted

    def mark_seen(self, message_ids: Sequence[str]) -> None:
        """Stream ids into their stream's high-water mark and runs, plain ids one by one; one transaction, committed
        without its own fsync (it reaches the disk with the next write's): marks lost to a power cut only let
        redelivered messages be applied again, which changes nothing (their effects are idempotent)."""
        if not message_ids:
            return
        run = consecutive_run(message_ids)
        if run is not None:  # the usual batch: one stream's next seqs, in order
            streams: dict[str, Sequence[int]] = {run[0]: range(run[1], run[2] + 1)}
            plain: list[str] = []
        else:
            plain, grouped = group_by_stream(message_ids)
            streams = dict(grouped)
        with self._write(durable=False) as changes:
            states = {}
            for stream, seqs in streams.items():
                hw, runs = self._streams.get(stream, (-1, ()))
                states[stream] = merge_seqs(hw, runs, seqs, max_chars=SEEN_ABOVE_MAX_CHARS)
            self._stage_streams(changes, states)
            fresh = [m for m in dict.fromkeys(plain) if m not in self._plain]
            if fresh:
                self._stage_plain(changes, fresh)

    def _mark_stream_state(self, stream: str, hw: int, runs: tuple[Run, ...]) -> None:
        """Set one stream's state as read from elsewhere (migration)."""
        with self._write() as changes:
            self._stage_streams(changes, {stream: (hw, runs)})

    def _stage_streams(self, changes: list[Callable[[], Undo]], states: dict[str, tuple[int, tuple[Run, ...]]]
                       ) -> None:
        """Write streams' states (each becomes the most recently used), forgetting the least recently used beyond
        the capacity."""
        rows = []
        for stream, (hw, runs) in states.items():
            self._stream_used += 1
            rows.append((stream, hw, encode_runs(hw, runs), self._stream_used))
        db = self._db
        db.executemany("INSERT INTO seen_streams (stream, hw, runs, used) VALUES (?, ?, ?, ?) ON CONFLICT (stream) "
                       "DO UPDATE SET hw = excluded.hw, runs = excluded.runs, used = excluded.used", rows)
        known = self._streams
        over = len(known) + sum(1 for stream in states if stream not in known) - self._stream_capacity
        evicted = [s for s in islice((s for s in known if s not in states), over)] if over > 0 else []
        if evicted:
            db.executemany("DELETE FROM seen_streams WHERE stream = ?", [(s,) for s in evicted])

        def apply() -> Undo:
            with self._seen_lock:
                before = {stream: known[stream] for stream in [*states, *evicted] if stream in known}
                for stream, state in states.items():
                    known.pop(stream, None)
                    known[stream] = state
                for stream in evicted:
                    known.pop(stream, None)

            def undo() -> None:  # (the order of use is only roughly restored: it only decides what is forgotten)
                with self._seen_lock:
                    for stream in states:
                        known.pop(stream, None)
                    known.update(before)
            return undo

        changes.append(apply)

    def _stage_plain(self, changes: list[Callable[[], Undo]], fresh: list[str]) -> None:
        """Remember plain ids, forgetting the oldest beyond the capacity (a call with more keeps its newest)."""
        first = self._plain_n + 1
        self._plain_n += len(fresh)
        numbered = list(zip(fresh, range(first, first + len(fresh)), strict=True))
        known = self._plain
        over = len(known) + len(numbered) - self._seen_capacity
        evicted = list(islice(known, over)) if over > 0 else []
        if over > len(evicted):
            dropped = over - len(evicted)
            evicted += [m for m, _ in numbered[:dropped]]
            numbered = numbered[dropped:]
        db = self._db
        db.executemany("INSERT OR REPLACE INTO seen_ids (id, n) VALUES (?, ?)", numbered)
        if evicted:
            db.executemany("DELETE FROM seen_ids WHERE id = ?", [(m,) for m in evicted])

        def apply() -> Undo:
            with self._seen_lock:
                removed = {m: known.pop(m) for m in evicted if m in known}
                known.update(numbered)

            def undo() -> None:
                with self._seen_lock:
                    for message_id, _ in numbered:
                        known.pop(message_id, None)
                    known.update(removed)
                    ordered = sorted(known.items(), key=lambda item: item[1])
                    known.clear()
                    known.update(ordered)
            return undo

        changes.append(apply)

    # ----------------------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the file (its log is checkpointed into it) and release it. Idempotent; writes after it raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.close()
            finally:
                self._release_lock()

    def _release_lock(self) -> None:
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            handle.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
