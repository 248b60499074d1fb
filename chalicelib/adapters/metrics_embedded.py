"""The embedded metric store: one SQLite file (WAL), for the local stack and single-machine installs.

Layout, chosen for the ingest hot path (batches of hundreds of points, 100k+ points/s on one core):

* ``series(id INTEGER PRIMARY KEY, field_id TEXT UNIQUE)``: a dictionary, so that a chunk carries a small
  integer instead of the ``gw.node.src.field`` text; the ids are cached in memory.
* ``chunks(series, t0, t1, n, ts, vals, PRIMARY KEY(series, t1)) WITHOUT ROWID``: the points of one series
  buffered between two commits. ``ts``: the timestamps, ascending and unique, as little-endian int64s;
  ``vals``: for numeric metrics (binary as 0/1) little-endian float64s (a BLOB, as the REAL column before), for
  string and geo (or a chunk mixing them after a metric type change) a JSON array (TEXT); ``none`` is not
  stored. A row per point cost ~4-7 us of B-tree work per point; a chunk of tens of points costs about as much
  as one row, and packing arrays costs ~0.1 us a point where JSON numbers cost ~1 us.
  Invariant: the chunks of one series never overlap in time, so a (series, timestamp) is stored at most once.
  A commit whose points reach back into stored chunks (redelivery, late data) merges with them: the point
  written last wins, as ``INSERT OR REPLACE`` of a row did.

Points are held in memory per series and committed at most every ``flush_interval_s`` or ``max_buffered``
points (and on ``flush``/``close``/any query: read your writes), one transaction a commit. ``synchronous=NORMAL``
keeps commits cheap and safe against a process crash; a passive WAL checkpoint every ``flush_interval_s`` bounds
what a power cut may take. Those checkpoints run on a thread of their own with its own connection (SQLite lets a
passive checkpoint run beside the writer), so the write path never waits for their fsync; ``flush`` and
``close`` still checkpoint before they return. Retention drops (or trims) old chunks at most once a
minute, from ``write`` (and on open). A file with the older one-row-per-point ``points`` table is converted
on open.

Queries read the chunks overlapping the range and answer raw rows or windows with ``core.metrics``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
import weakref
from array import array
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from math import isfinite
from operator import lt
from pathlib import Path
from typing import Any, Final

from chalicelib.core.metrics import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    Row,
    aggregate_sorted,
    raw_rows,
    stored_number,
    validate_functions,
)
from chalicelib.core.metrics import MetricQueryError as MetricQueryError  # re-exported for callers
from chalicelib.core.model import now_ms
from chalicelib.core.ports import MetricPoint, MetricQuery

log = logging.getLogger(__name__)

DAY_MS: Final = 86_400_000
PRUNE_EVERY_MS: Final = 60_000
"""Retention runs at most this often: it is a range lookup per series, not free on the write path."""
MAX_CHUNK: Final = 4096
"""Most points in one chunk row: a query decodes whole chunks, so merged history is cut into pieces."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, field_id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS chunks (series INTEGER NOT NULL, t0 INTEGER NOT NULL, t1 INTEGER NOT NULL, "
    "n INTEGER NOT NULL, ts BLOB NOT NULL, vals NOT NULL, PRIMARY KEY (series, t1)) WITHOUT ROWID",
)
_PLAIN_NUMBERS: Final = frozenset({"gauge_float", "gauge", "counter"})
_BOOL: Final = frozenset({bool})
_INSERT: Final = "INSERT INTO chunks (series, t0, t1, n, ts, vals) VALUES (?, ?, ?, ?, ?, ?)"
_OVERLAP: Final = "SELECT t0, t1, ts, vals FROM chunks WHERE series = ? AND t1 >= ? AND t0 <= ? ORDER BY t1"
_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_SWAP: Final = sys.byteorder != "little"
Packed = bytes | bytearray | str
Held = tuple["array[int]", "array[float] | list[Any]"]


ChunkRow = tuple[int, int, int, int, bytes | bytearray, Packed]


def _new_held() -> Held:
    return array("q"), array("d")


def _pack_ts(ts: list[int]) -> bytearray:
    """Little-endian int64s. A bytearray, not bytes: sqlite3 binds a bytearray as a blob as it is, while bytes go
    through its adapter lookup first (a few thousand instructions a parameter)."""
    packed = array("q", ts)
    if _SWAP:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return bytearray(packed)


def _pack_values(values: list[Any]) -> Packed:
    """float64s when every value is a number, else a JSON array (text, or numbers and text mixed)."""
    try:
        packed = array("d", values)
    except (TypeError, OverflowError):
        return _json(values)
    if _SWAP:  # pragma: no cover - big-endian hosts
        packed.byteswap()
    return bytearray(packed)


def _unpack(ts: bytes, values: Packed) -> tuple[Sequence[int], Sequence[Any]]:
    stamps = array("q")
    stamps.frombytes(ts)
    if isinstance(values, str):
        decoded: Sequence[Any] = json.loads(values)
    else:
        numbers = array("d")
        numbers.frombytes(values)
        decoded = numbers
        if _SWAP:  # pragma: no cover - big-endian hosts
            numbers.byteswap()
    if _SWAP:  # pragma: no cover - big-endian hosts
        stamps.byteswap()
    return stamps, decoded


def _pieces(sid: int, keys: list[int], values: list[Any]) -> Iterator[ChunkRow]:
    """Chunk rows for sorted, unique timestamps and their values, at most ``MAX_CHUNK`` points each."""
    if len(keys) <= MAX_CHUNK:
        yield sid, keys[0], keys[-1], len(keys), _pack_ts(keys), _pack_values(values)
        return
    for start in range(0, len(keys), MAX_CHUNK):
        ts, vals = keys[start:start + MAX_CHUNK], values[start:start + MAX_CHUNK]
        yield sid, ts[0], ts[-1], len(ts), _pack_ts(ts), _pack_values(vals)


def _ascending(ts: array[int]) -> bool:
    """Whether held timestamps are strictly ascending (as a field's values usually come)."""
    stamps = ts.tolist()
    return all(map(lt, stamps, islice(stamps, 1, None)))


def _last_wins(ts: list[int], values: list[Any]) -> tuple[list[int], list[Any]]:
    """Timestamps ascending and unique, the value written last for each."""
    if len(ts) == 1:
        return ts, values
    latest = dict(zip(ts, values, strict=True))
    keys = sorted(latest)
    if keys == ts:
        return ts, values
    return keys, [latest[k] for k in keys]


def _checkpoint_every_interval(store_ref: weakref.ref[EmbeddedMetricStore], stop: threading.Event, path: str,
                               interval_s: float) -> None:
    """Passive checkpoints on a connection of this thread: the WAL reaches the database file (and the disk)
    without the writer waiting for it. Holds the store only weakly, so that a store nobody closed can go."""
    checkpointed = 0
    db: sqlite3.Connection | None = None
    try:
        while not stop.wait(interval_s):
            store = store_ref()
            if store is None:
                return
            commits = store._commits
            del store
            if commits == checkpointed:
                continue
            checkpointed = commits
            try:
                if db is None:
                    db = sqlite3.connect(path, isolation_level=None)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # the next interval tries again; flush and close checkpoint too
                log.warning("WAL checkpoint of %s failed: %s", path, error)
    finally:
        if db is not None:
            db.close()


class EmbeddedMetricStore:
    """``MetricStore`` on a SQLite file; ``":memory:"`` for tests. Thread-safe: one connection, one lock."""

    def __init__(self, path: str | Path, retention_days: float = 30, flush_interval_s: float = 1.0, *,
                 clock: Callable[[], int] = now_ms, max_buffered: int = 100_000) -> None:
        self.path = str(path)
        self.max_buffered = max(0, max_buffered)
        """Points held in memory before a commit: a commit writes a row per series, so gathering
        ``flush_interval_s`` or ``max_buffered`` points first makes chunks of many points (a row costs SQLite
        about as much for 40 points as for 200: ~0.75 vs ~0.37 us a point here). 100,000 points are a few MB and
        at most one interval of data at 100k points/s."""
        self._buffer: dict[str, Held] = {}
        """field id → (timestamps, values) in the order written: int64s, and float64s while every value is a
        number (bools as 0/1), so that a held point costs 16 bytes and no objects; a list once text arrives."""
        self._buffered = 0
        self._buffer_since = 0
        self.retention_ms = int(retention_days * DAY_MS) if retention_days > 0 else 0
        self.flush_interval_ms = max(0, int(flush_interval_s * 1000))
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(self.path, check_same_thread=False,
                                                              isolation_level=None)
        db = self._db
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
            # Checkpoints run on our interval; this is the backstop (~40 MiB), and the WAL file is cut back to
            # 64 MiB after each.
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.execute("PRAGMA journal_size_limit=67108864")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("PRAGMA cache_size=-16384")  # 16 MiB
        for statement in _SCHEMA:
            db.execute(statement)
        self._convert_point_rows(db)
        self._series: dict[str, int] = dict(db.execute("SELECT field_id, id FROM series").fetchall())
        self._last_t1: dict[int, int] = dict(db.execute("SELECT series, MAX(t1) FROM chunks GROUP BY series"))
        """Newest stored timestamp per series: a commit past it cannot overlap a stored chunk."""
        self._last_prune = -PRUNE_EVERY_MS
        self._last_checkpoint = clock()
        self._commits = 0
        """Commits so far: the checkpoint thread skips an interval without any."""
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self.path != ":memory:" and self.flush_interval_ms > 0:
            self._checkpointer = threading.Thread(
                target=_checkpoint_every_interval, args=(weakref.ref(self), self._stop, self.path,
                                                         self.flush_interval_ms / 1000),
                daemon=True, name=f"wal-checkpoint {Path(self.path).name}")
            self._checkpointer.start()
            weakref.finalize(self, self._stop.set)  # a store dropped without close() stops its thread too
        self.prune()

    @staticmethod
    def _convert_point_rows(db: sqlite3.Connection) -> None:
        """Files written before chunks kept a ``points`` table with a row per point: turn it into chunks."""
        found = db.execute("SELECT type FROM sqlite_master WHERE name = 'points'").fetchone()
        if found is None or found[0] != "table":
            return
        db.execute("BEGIN")
        try:
            current: int | None = None
            ts: list[int] = []
            vals: list[Any] = []
            rows: list[ChunkRow] = []
            for sid, stamp, num, txt in db.execute("SELECT series, ts, num, txt FROM points ORDER BY series, ts"):
                if sid != current:
                    if ts and current is not None:
                        rows.extend(_pieces(current, ts, vals))
                    current, ts, vals = sid, [], []
                value = num if num is not None else txt
                if value is not None:
                    ts.append(stamp)
                    vals.append(value)
            if ts and current is not None:
                rows.extend(_pieces(current, ts, vals))
            db.executemany(_INSERT, rows)
            db.execute("DROP TABLE points")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # ----------------------------------------------------------------------------------------- writes

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"metric store {self.path} is closed")
        return self._db

    def _series_id(self, db: sqlite3.Connection, field_id: str) -> int:
        """The dictionary id of a field, created on first sight (inside the caller's transaction)."""
        found = self._series.get(field_id)
        if found is None:
            db.execute("INSERT OR IGNORE INTO series (field_id) VALUES (?)", (field_id,))
            found = int(db.execute("SELECT id FROM series WHERE field_id = ?", (field_id,)).fetchone()[0])
            self._series[field_id] = found
        return found

    def write(self, points: Sequence[MetricPoint]) -> None:
        """Hold a batch for the next commit; the same (field, timestamp) again replaces the stored point."""
        with self._lock:
            if not points and not self._buffer:
                return
            db = self._conn()
            now = self._clock()
            if self.retention_ms and now - self._last_prune >= PRUNE_EVERY_MS:
                self._prune(db, now)
            buffer = self._buffer
            if not buffer:
                self._buffer_since = now
            numeric_types, text_types = NUMERIC_TYPES, TEXT_TYPES
            for point in points:
                field_id, _gw, _node, _src, _key, metric_type, value, ts = point
                if value is None:
                    continue
                if metric_type in numeric_types:
                    kind = type(value)
                    # converted values (the processor's) take the fast path; x - x is 0 only when finite
                    if (kind is float or kind is int) and metric_type != "binary" and value - value == 0:
                        number: Any = value
                    else:
                        number = stored_number(value, metric_type)
                        if number is None:
                            continue
                elif metric_type in text_types:
                    number = value if type(value) is str else str(value)
                else:
                    continue
                held = buffer.get(field_id)
                if held is None:
                    buffer[field_id] = held = _new_held()
                held[0].append(ts)
                try:
                    held[1].append(number)
                except (TypeError, OverflowError):  # text (or a number no float64 holds): a list from now on
                    buffer[field_id] = (held[0], [*held[1], number])
            self._buffered += len(points)
            if self._buffered >= self.max_buffered or now - self._buffer_since >= self.flush_interval_ms:
                self._commit(db)
            if self._checkpointer is None and now - self._last_checkpoint >= self.flush_interval_ms:
                self._checkpoint(db, now)

    def write_series(self, series: Sequence[tuple[MetricPoint, Sequence[int], Sequence[Any]]]) -> None:
        """``write`` for values the processor has converted, a field at a time: (a point naming the field and
        its metric type, the timestamps, the values). Finite numbers for gauge_float, gauge and counter and bools
        for binary are held as they are; anything else goes point by point through ``write``."""
        if not series:
            return
        other: list[MetricPoint] = []
        with self._lock:
            self._conn()
            buffer = self._buffer
            if not buffer:
                self._buffer_since = self._clock()
            for point, stamps, values in series:
                field_id, metric_type = point[0], point[5]
                if metric_type in _PLAIN_NUMBERS:
                    try:  # a text, a huge or a non-finite value sends the series the slow way (the sum is finite
                        plain = isfinite(sum(values))  # only if each value is; a sum past float's range sends
                    except (TypeError, OverflowError):  # finite values that way too)
                        plain = False
                else:
                    plain = metric_type == "binary" and set(map(type, values)) <= _BOOL
                if not plain or len(stamps) != len(values):
                    other.extend(point._replace(value=v, timestamp_ms=t) for t, v in zip(stamps, values, strict=True))
                    continue
                held = buffer.get(field_id)
                if held is None:
                    buffer[field_id] = held = _new_held()
                held_stamps, held_values = held
                # (fromlist reads a list a third of the time extend takes; the values are numbers or bools, held as
                # float64s unless text came before: then the held values are a list)
                if type(stamps) is list:
                    held_stamps.fromlist(stamps)
                else:
                    held_stamps.extend(stamps)
                if type(values) is list and type(held_values) is array:
                    held_values.fromlist(values)
                else:
                    held_values.extend(values)
                self._buffered += len(stamps)
        self.write(other)  # the rest, and the commit and checkpoint timing

    def _commit(self, db: sqlite3.Connection) -> None:
        """Write the held points in one transaction: a new chunk per series, merged where it overlaps. Callers
        hold ``_lock``, so nothing is held anew while it runs."""
        buffer, buffered = self._buffer, self._buffered
        if not buffer:
            return
        self._buffer, self._buffered = {}, 0
        last_t1 = self._last_t1
        updates: dict[int, int] = {}
        db.execute("BEGIN")
        try:
            rows: list[ChunkRow] = []
            for field_id, (ts, values) in buffer.items():
                sid = self._series.get(field_id)
                if sid is None:
                    sid = self._series_id(db, field_id)
                stored = last_t1.get(sid)
                if (type(values) is array and len(ts) <= MAX_CHUNK and (stored is None or ts[0] > stored)
                        and not _SWAP and _ascending(ts)):  # the usual chunk: the held arrays are its columns
                    rows.append((sid, ts[0], ts[-1], len(ts), bytearray(ts), bytearray(values)))
                    updates[sid] = ts[-1]
                    continue
                keys, vals = _last_wins(ts.tolist(), values if isinstance(values, list) else values.tolist())
                if stored is not None and keys[0] <= stored:
                    keys, vals = self._merge(db, sid, keys, vals)
                rows.extend(_pieces(sid, keys, vals))
                if stored is None or keys[-1] > stored:
                    updates[sid] = keys[-1]
            db.executemany(_INSERT, rows)
            db.execute("COMMIT")
            self._commits += 1
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
                # series ids made in this transaction are gone with it: forget them, or two fields would share one
                self._series = dict(db.execute("SELECT field_id, id FROM series").fetchall())
            self._buffer, self._buffered = buffer, buffered  # kept for the next attempt
            raise
        last_t1.update(updates)

    @staticmethod
    def _merge(db: sqlite3.Connection, sid: int, keys: list[int], vals: list[Any]) -> tuple[list[int], list[Any]]:
        """New points that reach back into stored chunks: take those chunks out and return the union, the new
        points winning at equal timestamps. The union spans only those chunks, so no overlap can follow."""
        found = db.execute(_OVERLAP, (sid, keys[0], keys[-1])).fetchall()
        if not found:
            return keys, vals
        merged: dict[int, Any] = {}
        for _t0, _t1, ts_packed, vals_packed in found:
            merged.update(zip(*_unpack(ts_packed, vals_packed), strict=True))
        merged.update(zip(keys, vals, strict=True))
        db.executemany("DELETE FROM chunks WHERE series = ? AND t1 = ?", [(sid, row[1]) for row in found])
        ordered = sorted(merged)
        return ordered, [merged[k] for k in ordered]

    def _checkpoint(self, db: sqlite3.Connection, now: int, mode: str = "PASSIVE") -> None:
        self._last_checkpoint = now
        if self.path != ":memory:":
            db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()

    def flush(self) -> None:
        """Commit the held points and checkpoint the WAL into the database file."""
        with self._lock:
            if self._db is not None:
                self._commit(self._db)
                self._checkpoint(self._db, self._clock())

    def prune(self, now: int | None = None) -> int:
        """Delete points older than the retention now; returns how many went. Writes call this once a minute."""
        with self._lock:
            return self._prune(self._conn(), self._clock() if now is None else now)

    def _prune(self, db: sqlite3.Connection, now: int) -> int:
        self._last_prune = now
        if not self.retention_ms:
            return 0
        cutoff = now - self.retention_ms
        db.execute("BEGIN")
        try:
            # ``series IN (...)`` lets SQLite walk the primary key per series instead of scanning every chunk
            old = "FROM chunks WHERE series IN (SELECT id FROM series) AND t1 < ?"
            removed = int(db.execute(f"SELECT COALESCE(SUM(n), 0) {old}", (cutoff,)).fetchone()[0])
            db.execute(f"DELETE {old}", (cutoff,))
            # at most one chunk per series straddles the cutoff: keep its recent part
            straddling = db.execute(
                "SELECT c.series, c.t1, c.ts, c.vals FROM series AS s JOIN chunks AS c ON c.series = s.id AND "
                "c.t1 = (SELECT MIN(t1) FROM chunks WHERE series = s.id AND t1 >= :cut) WHERE c.t0 < :cut",
                {"cut": cutoff}).fetchall()
            for sid, t1, ts_packed, vals_packed in straddling:
                stamps, values = _unpack(ts_packed, vals_packed)
                kept = [(t, v) for t, v in zip(stamps, values, strict=True) if t >= cutoff]
                removed += len(stamps) - len(kept)
                db.execute("UPDATE chunks SET t0 = ?, n = ?, ts = ?, vals = ? WHERE series = ? AND t1 = ?",
                           (kept[0][0], len(kept), _pack_ts([t for t, _ in kept]),
                            _pack_values([v for _, v in kept]), sid, t1))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return removed

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join()
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                try:
                    self._commit(db)
                    self._checkpoint(db, self._clock(), "TRUNCATE")
                finally:
                    db.close()

    # ----------------------------------------------------------------------------------------- queries

    def query(self, query: MetricQuery) -> list[Row]:
        """Raw points or per-window aggregates of one field over ``[start_ms, stop_ms)``, ordered by time."""
        metric_type = query.metric_type
        if metric_type not in NUMERIC_TYPES and metric_type not in TEXT_TYPES:
            return []
        functions: list[str] = []
        if query.window_ms is not None:
            if query.window_ms <= 0:
                raise MetricQueryError(f"window must be longer than 0 ms, got {query.window_ms}")
            functions = validate_functions(query.functions, metric_type)
        start, stop = query.start_ms, query.stop_ms
        if start >= stop:
            return []
        with self._lock:
            db = self._conn()
            self._commit(db)  # read your writes
            sid = self._series.get(query.field_id)
            if sid is None:
                return []
            chunks = db.execute("SELECT ts, vals FROM chunks WHERE series = ? AND t1 >= ? AND t0 < ? ORDER BY t1",
                                (sid, start, stop)).fetchall()
        text = metric_type in TEXT_TYPES
        points: list[tuple[int, Any]] = []
        for ts_packed, vals_packed in chunks:
            points.extend((t, v) for t, v in zip(*_unpack(ts_packed, vals_packed), strict=True)
                          if start <= t < stop and (type(v) is str) is text)
        if query.window_ms is None:
            return raw_rows(points, metric_type)
        return aggregate_sorted(points, query.window_ms, functions, metric_type)
