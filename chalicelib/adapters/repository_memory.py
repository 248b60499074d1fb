"""The embedded repository: dicts in memory, dumped to a directory at intervals and on close, loaded on open.

This is the reference's in-memory storage plugin, made crash-safe. The ingest processor calls ``get_many`` and
``put_many`` for every batch, so those stay a handful of dict operations per record: no copies, no pydantic.
Records are stored and handed out as they are (shared): callers must never mutate one (see ``model``).

Seen message ids (idempotence): the edge's ``<stream>-<seq>`` ids as a high-water mark and runs per stream
(``core/seen.py``, as the DynamoDB adapter keeps them: a few numbers per stream, not a string per message), the
most recently used ``seen_streams`` streams kept; other ("plain") ids one by one, the newest ``seen_capacity``.

On disk (``data_dir``): one JSON file per kind and one for the seen message ids, each named with the dump
generation that wrote it (``field.000042.json``), and ``manifest.json`` naming the files of the current state.
A dump writes the files of the kinds that changed (temp file, flush, fsync, rename, fsync of the directory),
then replaces the manifest the same way: the manifest rename is the commit, so a crash at any point leaves
the previous complete state, across all kinds, and files of an unfinished dump are swept on the next open.
A file that cannot be read on open raises ``RepositoryLoadError`` naming it: data is never dropped silently.

Versions (conditional writes): one counter for the whole repository, its next value given to each record written
(so a record deleted and made again never gets a version seen before). They live in memory only: after a restart
no read-modify-write from before is still waiting to write.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Final

from chalicelib.adapters.errors import AdapterError
from chalicelib.adapters.files import fsync_dir
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

log = logging.getLogger(__name__)

FORMAT: Final = "mycontroller-memory-repository"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
SEEN: Final = "seen"
DEFAULT_SEEN_CAPACITY: Final = 1_000_000
DEFAULT_SEEN_STREAMS: Final = 10_000
SEEN_ABOVE_MAX_CHARS: Final = 4096
"""Encoded runs kept per stream (hundreds of gaps) before the oldest gaps count as seen (see ``core/seen.py``)."""
_DATA_FILE: Final = re.compile(r"^[a-z_]+\.\d{6,}\.json\Z")
_TEMP_FILE: Final = re.compile(r"^\.(manifest|[a-z_]+\.\d{6,})\.json\..+\.tmp\Z")


class RepositoryLoadError(AdapterError, RuntimeError):
    """A stored file that cannot be read back; the message names the file and what is wrong."""


class RepositoryClosedError(AdapterError, RuntimeError):
    """A write after ``close()``: it could not be persisted any more, so it is refused."""


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class MemoryRepository:
    """Dict-backed ``Repository``; ``data_dir=None`` keeps everything in memory only.

    ``dump_interval_s`` <= 0 disables the timer (dumps then happen on ``dump()`` and ``close()`` only).
    ``seen_capacity`` bounds the remembered plain message ids (oldest forgotten first), ``seen_streams`` the
    edge streams whose applied sequence numbers are kept (least recently marked forgotten first).
    """

    def __init__(self, data_dir: str | Path | None, dump_interval_s: float = 60.0, *,
                 seen_capacity: int = DEFAULT_SEEN_CAPACITY, seen_streams: int = DEFAULT_SEEN_STREAMS) -> None:
        self._data: dict[Kind, dict[str, Record]] = {kind: {} for kind in Kind}
        self._versions: dict[Kind, dict[str, int]] = {kind: {} for kind in Kind}
        self._version = 0
        """The last version given (each write takes the next)."""
        # child kind -> parent id -> child ids (a dict as an ordered set): children without a scan
        self._index: dict[Kind, dict[str, dict[str, None]]] = {kind: {} for kind in PARENT_KIND}
        self._seen: set[str] = set()
        self._seen_capacity = max(1, int(seen_capacity))
        self._seen_order: deque[str] = deque(maxlen=self._seen_capacity)
        """The remembered ids, oldest first; appending to a full one drops the oldest (take it out of the set
        first)."""
        self._streams: dict[str, tuple[int, tuple[Run, ...]]] = {}
        """Edge stream → (hw, runs above it); least recently marked first."""
        self._stream_capacity = max(1, int(seen_streams))
        self._last_run: tuple[list[str], tuple[str, int, int]] | None = None
        """The ids ``seen`` last found to be one stream's consecutive seqs, and that run: ``mark_seen`` of the same
        batch (the processor's next call) then needs no second check."""
        self._lock = threading.Lock()
        self._dump_lock = threading.Lock()
        self._dirty: set[Kind] = set()
        self._seen_dirty = False
        self._closed = False
        self._dir = Path(data_dir) if data_dir is not None else None
        self._files: dict[str, str] = {}
        self._generation = 0
        self.dump_count = 0
        """Dumps completed since open (for tests and status pages)."""
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._load()
            if dump_interval_s > 0:
                self._timer = threading.Thread(target=self._run_timer, args=(float(dump_interval_s),),
                                               name="memory-repository-dump", daemon=True)
                self._timer.start()

    # ----------------------------------------------------------------------------------------- reads

    def get(self, kind: Kind, entity_id: str) -> Record | None:
        return self._data[kind].get(entity_id)

    def get_many(self, kind: Kind, ids: Iterable[str]) -> dict[str, Record]:
        # Reads take no lock: single dict lookups are atomic under the GIL and records are never mutated.
        get = self._data[kind].get
        found: dict[str, Record] = {}
        for entity_id in ids:
            record = get(entity_id)
            if record is not None:
                found[entity_id] = record
        return found

    def get_versioned(self, kind: Kind, entity_id: str) -> Versioned:
        with self._lock:  # (the record and its version as one write left them)
            record = self._data[kind].get(entity_id)
            return (record, self._versions[kind].get(entity_id, 0)) if record is not None else (None, 0)

    def get_many_versioned(self, kind: Kind, ids: Iterable[str], *, consistent: bool = True
                           ) -> dict[str, tuple[Record, int]]:
        with self._lock:
            store, versions = self._data[kind], self._versions[kind]
            return {entity_id: (store[entity_id], versions.get(entity_id, 0)) for entity_id in ids
                    if entity_id in store}

    def query(self, kind: Kind, query: ListQuery) -> ListResult:
        with self._lock:
            records = list(self._data[kind].values())
        return apply_query(records, query)

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        child_kind = CHILD_KIND.get(kind)
        if child_kind is None:
            return []
        with self._lock:
            store = self._data[child_kind]
            ids = list(self._index[child_kind].get(parent_id, ()))
            return [store[i] for i in sorted(ids)]

    def seen(self, message_ids: Sequence[str]) -> set[str]:
        with self._lock:  # (mark_seen takes a stream out and puts it back)
            return self._seen_of(message_ids)

    def _seen_of(self, message_ids: Sequence[str]) -> set[str]:
        streams = self._streams
        run = self._run_of(message_ids)
        if run is not None:  # the usual batch: one stream's next seqs, in order
            stream, first, last = run
            state = streams.get(stream)
            if state is None:
                return set()
            hw, runs = state
            if first > hw and not any(start <= last and end >= first for start, end in runs):
                return set()
            return {message_id for seq, message_id in enumerate(message_ids, first) if runs_contain(hw, runs, seq)}
        found: set[str] = set()
        for message_id in message_ids:
            parsed = split_message_id(message_id)
            if parsed is None:
                if message_id in self._seen:
                    found.add(message_id)
            elif (state := streams.get(parsed[0])) is not None and runs_contain(state[0], state[1], parsed[1]):
                found.add(message_id)
        return found

    # ----------------------------------------------------------------------------------------- writes

    def put(self, kind: Kind, record: Record, *, expected_version: int | None = None) -> None:
        entity_id = checked_id(kind, record)
        self.put_many(kind, (record,), expected_versions=None if expected_version is None
                      else {entity_id: expected_version})

    def put_many(self, kind: Kind, records: Sequence[Record], *, if_newer: bool = False,
                 expected_versions: Mapping[str, int] | None = None) -> list[str]:
        """Stores the dicts themselves (no copy, no validation: the hot path). Records are applied in order; a
        record without ``id`` raises ``KeyError`` after the ones before it were stored."""
        rejected: list[str] = []
        conflicts: list[str] = []
        if expected_versions:
            conditional = [r["id"] for r in records if r["id"] in expected_versions]
            if len(set(conditional)) != len(conditional):
                raise ValueError("an id with an expected version may appear once in a put_many")
        with self._lock:
            if self._closed:
                raise RepositoryClosedError("repository is closed; the write would be lost")
            store = self._data[kind]
            versions = self._versions[kind]
            version = self._version
            index = self._index.get(kind)
            try:
                for record in records:
                    entity_id = record["id"]
                    if expected_versions is not None and entity_id in expected_versions \
                            and versions.get(entity_id, 0) != expected_versions[entity_id]:
                        conflicts.append(entity_id)
                        continue
                    stored = store.get(entity_id)
                    if stored is None:
                        if index is not None:
                            self._index_child(index, entity_id)
                    elif if_newer and is_stale(stored, record):
                        rejected.append(entity_id)
                        continue
                    store[entity_id] = record
                    version += 1
                    versions[entity_id] = version
            finally:  # (a record without id stops the loop: the versions given stay given)
                self._version = version
                self._dirty.add(kind)
        if conflicts:
            raise ConditionFailed(f"{kind.value} {', '.join(conflicts[:5])}: changed since read", conflicts, rejected)
        return rejected

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nothing to group: each call is applied at once (and all of them dumped together)."""
        yield

    @staticmethod
    def _index_child(index: dict[str, dict[str, None]], entity_id: str) -> None:
        parent = entity_id.rpartition(".")[0]
        siblings = index.get(parent)
        if siblings is None:
            index[parent] = {entity_id: None}
        else:
            siblings[entity_id] = None

    def delete(self, kind: Kind, ids: Sequence[str]) -> list[tuple[Kind, Record]]:
        """Cascades through the parent index; returns parents before children, each level in id order."""
        deleted: list[tuple[Kind, Record]] = []
        with self._lock:
            if self._closed:
                raise RepositoryClosedError("repository is closed; the delete would be lost")
            for entity_id in dict.fromkeys(ids):
                record = self._remove(kind, entity_id)
                if record is not None:
                    deleted.append((kind, record))
                if kind not in CHILD_KIND:
                    continue
                # Everything whose id extends this one, orphans included (as DynamoDB's prefix query finds
                # them), level by level and each level in id order: parents are announced before children.
                prefix = entity_id + "."
                for below in DEVICE_KINDS[DEVICE_KINDS.index(kind) + 1:]:
                    index = self._index[below]
                    parents = [p for p in index if p == entity_id or p.startswith(prefix)]
                    for child_id in sorted(c for p in parents for c in index.get(p, ())):
                        child = self._remove(below, child_id)
                        if child is not None:
                            deleted.append((below, child))
        return deleted

    def _remove(self, kind: Kind, entity_id: str) -> Record | None:
        record = self._data[kind].pop(entity_id, None)
        if record is None:
            return None
        self._versions[kind].pop(entity_id, None)
        self._dirty.add(kind)
        index = self._index.get(kind)
        if index is not None:
            parent = entity_id.rpartition(".")[0]
            siblings = index.get(parent)
            if siblings is not None:
                siblings.pop(entity_id, None)
                if not siblings:
                    del index[parent]
        return record

    def mark_seen(self, message_ids: Sequence[str]) -> None:
        """Stream ids into their stream's high-water mark and runs; plain ids into a bounded set (a deque for the
        FIFO eviction)."""
        with self._lock:
            if self._closed:
                raise RepositoryClosedError("repository is closed; seen ids would be lost")
            run = self._run_of(message_ids)
            if run is not None:  # the usual batch: one stream's next seqs, in order
                self._mark_stream(run[0], range(run[1], run[2] + 1))
            else:
                self._mark_ids(message_ids)
            self._seen_dirty = True

    def _run_of(self, message_ids: Sequence[str]) -> tuple[str, int, int] | None:
        """``consecutive_run`` of the ids, checked once for ``seen`` and ``mark_seen`` of one batch (held: ``_lock``).
        The ids are kept as a list of their own: comparing it with the same strings again is a pointer check each."""
        last = self._last_run
        if last is not None and last[0] == message_ids:
            return last[1]
        run = consecutive_run(message_ids)
        self._last_run = (list(message_ids), run) if run is not None else None
        return run

    def _mark_ids(self, message_ids: Iterable[str]) -> None:
        """Any mix of stream and plain ids (held: ``_lock``)."""
        plain, streams = group_by_stream(message_ids)
        for stream, seqs in streams.items():
            self._mark_stream(stream, seqs)
        if plain:
            self._mark_plain(plain)

    def _mark_stream(self, stream: str, seqs: Sequence[int]) -> None:
        """Add applied seqs to a stream, which becomes the most recently used one (held: ``_lock``)."""
        streams = self._streams
        hw, runs = streams.pop(stream, (-1, ()))
        streams[stream] = merge_seqs(hw, runs, seqs, max_chars=SEEN_ABOVE_MAX_CHARS)
        if len(streams) > self._stream_capacity:
            del streams[next(iter(streams))]

    def _mark_plain(self, message_ids: Sequence[str]) -> None:
        known, order, capacity = self._seen, self._seen_order, self._seen_capacity
        fresh = set(message_ids)
        if len(fresh) == len(message_ids) <= capacity and known.isdisjoint(fresh):  # in bulk
            excess = len(order) + len(fresh) - capacity
            if excess > 0:
                known.difference_update(islice(order, excess))
            known.update(fresh)
            order.extend(message_ids)  # drops the ``excess`` oldest
        else:
            for message_id in message_ids:
                if message_id not in known:
                    if len(order) == capacity:
                        known.discard(order.popleft())
                    known.add(message_id)
                    order.append(message_id)

    # ----------------------------------------------------------------------------------------- persistence

    def dump(self) -> bool:
        """Write what changed since the last dump; returns whether anything was written.

        The snapshot is a shallow copy taken under the lock (records are immutable); encoding and file I/O
        happen outside it so that ingest is not held up. On failure nothing is lost: the kinds stay dirty
        for the next dump and the previous state on disk stays the current one.
        """
        directory = self._dir
        if directory is None:
            return False
        with self._dump_lock:
            with self._lock:
                dirty, seen_dirty = self._dirty, self._seen_dirty
                if not dirty and not seen_dirty:
                    return False
                self._dirty, self._seen_dirty = set(), False
                snapshot = {kind: list(self._data[kind].values()) for kind in dirty}
                seen = list(self._seen_order) if seen_dirty else None
                streams = dict(self._streams) if seen_dirty else {}
            try:
                generation = self._generation + 1
                files = dict(self._files)
                for kind in sorted(snapshot):
                    name = f"{kind.value}.{generation:06d}.json"
                    self._write(directory, name, _encode(
                        {"format": FORMAT, "version": VERSION, "kind": kind.value, "records": snapshot[kind]}))
                    files[kind.value] = name
                if seen is not None:
                    name = f"{SEEN}.{generation:06d}.json"
                    self._write(directory, name, _encode(
                        {"format": FORMAT, "version": VERSION, "kind": SEEN, "ids": seen,
                         "streams": {stream: [hw, encode_runs(hw, runs)] for stream, (hw, runs) in streams.items()}}))
                    files[SEEN] = name
                fsync_dir(directory)  # the data files are durable before the manifest points at them
                self._write(directory, MANIFEST, _encode(
                    {"format": FORMAT, "version": VERSION, "generation": generation, "files": files}))
                fsync_dir(directory)
            except BaseException:
                with self._lock:
                    self._dirty |= dirty
                    self._seen_dirty = self._seen_dirty or seen_dirty
                raise
            stale = set(self._files.values()) - set(files.values())
            self._generation, self._files = generation, files
            for name in stale:
                try:
                    (directory / name).unlink()
                except OSError as error:
                    log.warning("could not remove old dump file %s: %s", directory / name, error)
            self.dump_count += 1
            return True

    @staticmethod
    def _write(directory: Path, name: str, data: bytes) -> None:
        """Atomic replace: a reader (or a crash) sees the old file or the whole new one, never a part."""
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, directory / name)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise RepositoryLoadError(f"{path}: listed in {MANIFEST} but missing") from None
        except (OSError, ValueError) as error:
            raise RepositoryLoadError(f"{path}: cannot be read as JSON ({error})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise RepositoryLoadError(f"{path}: not a {FORMAT} file")
        if document.get("version") != VERSION:
            raise RepositoryLoadError(f"{path}: version {document.get('version')!r} is not {VERSION}")
        return document

    def _load(self) -> None:
        directory = self._dir
        assert directory is not None
        manifest_path = directory / MANIFEST
        if manifest_path.exists():
            manifest = self._read(manifest_path)
            files, generation = manifest.get("files"), manifest.get("generation")
            if not isinstance(files, dict) or not isinstance(generation, int):
                raise RepositoryLoadError(f"{manifest_path}: needs 'files' (object) and 'generation' (integer)")
            for key, name in files.items():
                if not isinstance(name, str) or not _DATA_FILE.match(name):
                    raise RepositoryLoadError(f"{manifest_path}: bad file name {name!r} for {key!r}")
                path = directory / name
                document = self._read(path)
                if key == SEEN:
                    self._load_seen(path, document)
                else:
                    self._load_kind(path, key, document)
            self._files, self._generation = dict(files), generation
        # Whatever is not in the manifest is an unfinished dump's: sweep it (only our own file names).
        referenced = set(self._files.values()) | {MANIFEST}
        for entry in directory.iterdir():
            if entry.name not in referenced and (_DATA_FILE.match(entry.name) or _TEMP_FILE.match(entry.name)):
                try:
                    entry.unlink()
                except OSError as error:
                    log.warning("could not remove unfinished dump file %s: %s", entry, error)

    def _load_kind(self, path: Path, key: str, document: dict[str, Any]) -> None:
        try:
            kind = Kind(key)
        except ValueError:
            raise RepositoryLoadError(f"{path}: unknown kind {key!r}") from None
        records = document.get("records")
        if document.get("kind") != key or not isinstance(records, list):
            raise RepositoryLoadError(f"{path}: expected kind {key!r} with a 'records' list")
        store = self._data[kind]
        index = self._index.get(kind)
        for position, record in enumerate(records):
            entity_id = record.get("id") if isinstance(record, dict) else None
            if not isinstance(entity_id, str) or not entity_id:
                raise RepositoryLoadError(f"{path}: record #{position} has no string 'id'")
            if index is not None and entity_id not in store:
                self._index_child(index, entity_id)
            store[entity_id] = record
            self._version += 1
            self._versions[kind][entity_id] = self._version

    def _load_seen(self, path: Path, document: dict[str, Any]) -> None:
        ids = document.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise RepositoryLoadError(f"{path}: 'ids' must be a list of strings")
        streams = document.get("streams", {})
        if not isinstance(streams, dict) or not all(
                isinstance(state, list) and len(state) == 2 and type(state[0]) is int and isinstance(state[1], str)
                for state in streams.values()):
            raise RepositoryLoadError(f"{path}: 'streams' must map each stream to [hw, runs]")
        for stream, (hw, text) in streams.items():
            self._streams[stream] = (hw, decode_runs(hw, text))
        while len(self._streams) > self._stream_capacity:
            del self._streams[next(iter(self._streams))]
        self._mark_ids(ids)  # (a dump written before streams holds stream ids here too)

    def _run_timer(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.dump()
            except Exception:
                log.exception("periodic dump of the memory repository to %s failed; will retry", self._dir)

    def close(self) -> None:
        """Stop the timer and write the final dump. Idempotent; if the dump fails it raises (the data would be lost
        otherwise) and calling ``close()`` again retries it."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        with self._lock:
            self._closed = True
        self.dump()
