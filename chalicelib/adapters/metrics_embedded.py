"""The embedded metric store: one SQLite file (WAL), for the local stack and single-machine installs.

Layout, chosen for the ingest hot path (batches of hundreds of points, ~100k points/s):

* ``series(id INTEGER PRIMARY KEY, field_id TEXT UNIQUE)``: a dictionary, so that a point carries a small
  integer instead of the ``gw.node.src.field`` text; the ids are cached in memory.
* ``points(series, ts, num REAL, txt TEXT, PRIMARY KEY(series, ts)) WITHOUT ROWID``: clustered by series and
  time, so a range query is one index range and rewriting the same point (at-least-once delivery) replaces it.
  Numeric metrics (binary as 0/1) fill ``num``, string and geo fill ``txt``; ``none`` is not stored.

One ``write()`` is one transaction (``executemany``). ``synchronous=NORMAL`` keeps commits cheap and safe against
a process crash; a passive WAL checkpoint at most every ``flush_interval_s`` (and on ``flush``/``close``) bounds
what a power cut may take. Retention deletes old points at most once a minute, from ``write`` (and on open).

Queries: raw ranges and windowed mean/min/max/sum/count/first/last are SQL (GROUP BY the epoch-aligned
window); median and percentiles come from ``core.metrics.aggregate`` over the window's values.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from chalicelib.core.metrics import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    MetricQueryError,
    Row,
    aggregate,
    percentile_of,
    raw_rows,
    stored_number,
    typed_value,
    validate_functions,
)
from chalicelib.core.model import iso_from_ms, now_ms
from chalicelib.core.ports import MetricPoint, MetricQuery

DAY_MS: Final = 86_400_000
PRUNE_EVERY_MS: Final = 60_000
"""Retention runs at most this often: deleting is a range scan per series, not free on the write path."""

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, field_id TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS points (series INTEGER NOT NULL, ts INTEGER NOT NULL, num REAL, txt TEXT, "
    "PRIMARY KEY (series, ts)) WITHOUT ROWID",
)
_INSERT: Final = "INSERT OR REPLACE INTO points (series, ts, num, txt) VALUES (?, ?, ?, ?)"
_WINDOW: Final = "ts - ((ts % :w) + :w) % :w"
"""Floor of ts to an epoch multiple of the window (SQLite's % keeps the dividend's sign)."""
_SQL_FUNCTIONS: Final = {"mean": "AVG({v})", "min": "MIN({v})", "max": "MAX({v})", "sum": "SUM({v})",
                         "count": "COUNT(*)"}


class EmbeddedMetricStore:
    """``MetricStore`` on a SQLite file; ``":memory:"`` for tests. Thread-safe: one connection, one lock."""

    def __init__(self, path: str | Path, retention_days: float = 30, flush_interval_s: float = 1.0, *,
                 clock: Callable[[], int] = now_ms, max_buffered: int = 20_000) -> None:
        self.path = str(path)
        self.max_buffered = max(0, max_buffered)
        """Points held in memory before a commit. Points are clustered by field, so a commit of a 500-point batch
        from 500 fields writes ~500 pages; gathering ``flush_interval_s`` or ``max_buffered`` points first
        writes each page once for many points. ``flush`` and queries commit what is held (read your writes)."""
        self._buffer: list[tuple[int, int, Any, Any]] = []
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
            # A batch of points from many fields dirties a page per field; checkpointing every 1000 pages (the
            # default) would copy and fsync every other batch. Checkpoints run on our interval instead, with
            # this as the backstop (~40 MiB), and the WAL file is cut back to 64 MiB after each.
            db.execute("PRAGMA wal_autocheckpoint=10000")
            db.execute("PRAGMA journal_size_limit=67108864")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("PRAGMA cache_size=-16384")  # 16 MiB
        for statement in _SCHEMA:
            db.execute(statement)
        self._series: dict[str, int] = dict(db.execute("SELECT field_id, id FROM series").fetchall())
        self._last_prune = -PRUNE_EVERY_MS
        self._last_checkpoint = clock()
        self.prune()

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
        """Store a batch in one transaction; the same (field, timestamp) again replaces the stored point."""
        if not points:
            return
        with self._lock:
            db = self._conn()
            now = self._clock()
            if self.retention_ms and now - self._last_prune >= PRUNE_EVERY_MS:
                self._prune(db, now)
            series = self._series
            rows = self._buffer
            if not rows:
                self._buffer_since = now
            append = rows.append
            for point in points:
                field_id, _gw, _node, _src, _key, metric_type, value, ts = point
                if value is None:
                    continue
                if metric_type in NUMERIC_TYPES:
                    kind = type(value)
                    # converted values (the processor's) take the fast path; x - x is 0 only when finite
                    if (kind is float or kind is int) and metric_type != "binary" and value - value == 0:
                        number: Any = value
                    else:
                        number = stored_number(value, metric_type)
                        if number is None:
                            continue
                    sid = series.get(field_id)
                    append((sid if sid is not None else self._series_id(db, field_id), ts, number, None))
                elif metric_type in TEXT_TYPES:
                    sid = series.get(field_id)
                    append((sid if sid is not None else self._series_id(db, field_id), ts, None,
                            value if type(value) is str else str(value)))
            if len(rows) >= self.max_buffered or now - self._buffer_since >= self.flush_interval_ms:
                self._commit(db)
            if now - self._last_checkpoint >= self.flush_interval_ms:
                self._checkpoint(db, now)

    def _commit(self, db: sqlite3.Connection) -> None:
        """Write the held points in one transaction, in index order (each page visited once)."""
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        rows.sort()
        db.execute("BEGIN")
        try:
            db.executemany(_INSERT, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._buffer = rows + self._buffer  # keep them for the next attempt
            raise

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
        # ``series IN (...)`` lets SQLite walk the primary key per series instead of scanning every point
        cursor = db.execute("DELETE FROM points WHERE series IN (SELECT id FROM series) AND ts < ?",
                            (now - self.retention_ms,))
        return int(cursor.rowcount)

    def close(self) -> None:
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
        if query.start_ms >= query.stop_ms:
            return []
        column = "txt" if metric_type in TEXT_TYPES else "num"
        with self._lock:
            db = self._conn()
            self._commit(db)  # read your writes
            sid = self._series.get(query.field_id)
            if sid is None:
                return []
            params = {"s": sid, "a": query.start_ms, "b": query.stop_ms, "w": query.window_ms}
            where = f"series = :s AND ts >= :a AND ts < :b AND {column} IS NOT NULL"
            if query.window_ms is None:
                points = db.execute(f"SELECT ts, {column} FROM points WHERE {where} ORDER BY ts", params).fetchall()
                return raw_rows(points, metric_type)
            sql_functions = [f for f in functions if percentile_of(f) is None]
            percentiles = [f for f in functions if percentile_of(f) is not None]
            by_window: dict[str, Row] = {}
            if sql_functions:
                for row in self._sql_aggregate(db, where, params, column, sql_functions, metric_type):
                    by_window[row["time"]] = row
            if percentiles:
                points = db.execute(f"SELECT ts, {column} FROM points WHERE {where}", params).fetchall()
                for row in aggregate(points, query.start_ms, query.stop_ms, query.window_ms, percentiles,
                                     metric_type):
                    by_window.setdefault(row["time"], {"time": row["time"]}).update(row)
        return [{"time": time, **{f: row[f] for f in functions}} for time, row in sorted(by_window.items())]

    @staticmethod
    def _sql_aggregate(db: sqlite3.Connection, where: str, params: dict[str, Any], column: str,
                       functions: list[str], metric_type: str) -> list[Row]:
        """mean/min/max/sum/count per window in one GROUP BY; first/last by joining back on the window's
        earliest and latest timestamps (an exact primary-key lookup each)."""
        selects = [_SQL_FUNCTIONS[f].format(v=column) for f in functions if f in _SQL_FUNCTIONS]
        names = [f for f in functions if f in _SQL_FUNCTIONS]
        joins = []
        outer = [f"w.c{i}" for i in range(len(names))]
        for name, edge in (("first", "t0"), ("last", "t1")):
            if name in functions:
                joins.append(f"JOIN points {name} ON {name}.series = :s AND {name}.ts = w.{edge}")
                outer.append(f"{name}.{column}")
                names.append(name)
        inner = ", ".join([f"{select} AS c{i}" for i, select in enumerate(selects)]
                          + ["MIN(ts) AS t0", "MAX(ts) AS t1"])
        sql = (f"WITH w AS (SELECT {_WINDOW} AS win, {inner} FROM points WHERE {where} GROUP BY win) "
               f"SELECT w.win, {', '.join(outer)} FROM w {' '.join(joins)} ORDER BY w.win")
        rows: list[Row] = []
        for win, *values in db.execute(sql, params):
            row: Row = {"time": iso_from_ms(win)}
            for name, value in zip(names, values, strict=True):
                row[name] = float(value) if name == "mean" else value if name == "count" else \
                    typed_value(value, metric_type)
            rows.append(row)
        return rows
