"""The embedded metric store's chunk layout: late and repeated points merge, series writes equal point writes,
files with the older row-per-point table are converted, retention trims chunks that straddle the cutoff."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from chalicelib.adapters import metrics_embedded
from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.core.ports import MetricPoint, MetricQuery

T0 = 1_704_067_200_000
DAY = 86_400_000
TEMP = "gw.1.1.V_TEMP"


def point(field_id: str, value: object, ts: int, metric_type: str = "gauge_float") -> MetricPoint:
    gateway, node, source, key = field_id.split(".")
    return MetricPoint(field_id, gateway, node, source, key, metric_type, value, ts)


def raw(store: EmbeddedMetricStore, field_id: str = TEMP, metric_type: str = "gauge_float") -> list[tuple[int, object]]:
    rows = store.query(MetricQuery(field_id=field_id, metric_type=metric_type, start_ms=0, stop_ms=T0 * 2))
    from chalicelib.core.model import ms_from_iso

    return [(ms_from_iso(row["time"]) - T0, row["value"]) for row in rows]


def chunks(path: Path) -> list[tuple[int, int, int, int]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT series, t0 - ?, t1 - ?, n FROM chunks ORDER BY series, t1", (T0, T0)).fetchall()
    finally:
        db.close()


def test_each_commit_is_one_chunk_per_series_and_chunks_never_overlap(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    store = EmbeddedMetricStore(path, retention_days=0)
    store.write([point(TEMP, float(i), T0 + i) for i in range(5)])
    store.flush()
    store.write([point(TEMP, float(i), T0 + i) for i in range(10, 13)])
    store.close()

    assert chunks(path) == [(1, 0, 4, 5), (1, 10, 12, 3)]


def test_late_and_repeated_points_merge_into_the_chunks_they_reach_and_the_last_write_wins(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    store = EmbeddedMetricStore(path, retention_days=0)
    store.write([point(TEMP, 1.0, T0), point(TEMP, 2.0, T0 + 10)])
    store.flush()
    store.write([point(TEMP, 3.0, T0 + 20), point(TEMP, 4.0, T0 + 30)])
    store.flush()
    store.write([point(TEMP, 9.0, T0 + 10), point(TEMP, 5.0, T0 + 15), point(TEMP, 6.0, T0 + 40)])  # late, one again
    store.flush()

    assert raw(store) == [(0, 1.0), (10, 9.0), (15, 5.0), (20, 3.0), (30, 4.0), (40, 6.0)]
    store.close()
    assert chunks(path) == [(1, 0, 40, 6)], "the chunks it reached and the new points became one"


def test_a_gap_between_chunks_takes_a_chunk_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    store = EmbeddedMetricStore(path, retention_days=0)
    store.write([point(TEMP, 1.0, T0), point(TEMP, 2.0, T0 + 10)])
    store.flush()
    store.write([point(TEMP, 4.0, T0 + 30)])
    store.flush()
    store.write([point(TEMP, 3.0, T0 + 20)])
    store.close()

    assert chunks(path) == [(1, 0, 10, 2), (1, 20, 20, 1), (1, 30, 30, 1)]
    reopened = EmbeddedMetricStore(path, retention_days=0)
    try:
        assert raw(reopened) == [(0, 1.0), (10, 2.0), (20, 3.0), (30, 4.0)]
        reopened.write([point(TEMP, 5.0, T0 + 30)])  # the newest stored point, known after reopening
        assert raw(reopened)[-1] == (30, 5.0)
    finally:
        reopened.close()


def test_long_histories_are_cut_into_bounded_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_embedded, "MAX_CHUNK", 4)
    path = tmp_path / "m.sqlite3"
    store = EmbeddedMetricStore(path, retention_days=0)
    store.write([point(TEMP, float(i), T0 + i) for i in range(10)])
    store.close()

    assert chunks(path) == [(1, 0, 3, 4), (1, 4, 7, 4), (1, 8, 9, 2)]


def test_series_writes_store_what_point_writes_store() -> None:
    rng = random.Random(5)
    by_points = EmbeddedMetricStore(":memory:", retention_days=0)
    by_series = EmbeddedMetricStore(":memory:", retention_days=0)
    fields = {"gw.1.1.t": "gauge_float", "gw.1.2.s": "binary", "gw.1.3.c": "counter", "gw.1.4.x": "string"}
    for batch in range(20):
        series = []
        points = []
        for field_id, metric_type in fields.items():
            stamps = sorted(rng.sample(range(batch * 100, batch * 100 + 100), 3))
            if metric_type == "binary":
                values: list[object] = [rng.random() < 0.5 for _ in stamps]
            elif metric_type == "counter":
                values = [rng.randint(0, 50) for _ in stamps]
            elif metric_type == "string":
                values = [rng.choice(["a", "b"]) for _ in stamps]
            else:
                values = [rng.choice([rng.uniform(-5, 5), float("nan"), "7.5", 1e308 * 10]) for _ in stamps]
            template = point(field_id, None, 0, metric_type)
            series.append((template, [T0 + ts for ts in stamps], values))
            points += [template._replace(value=v, timestamp_ms=T0 + ts) for ts, v in zip(stamps, values, strict=True)]
        by_series.write_series(series)
        by_points.write(points)
    for field_id, metric_type in fields.items():
        assert raw(by_series, field_id, metric_type) == raw(by_points, field_id, metric_type)
        assert raw(by_series, field_id, metric_type), field_id
    by_points.close()
    by_series.close()


def test_a_file_with_a_row_per_point_is_converted_on_open(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE series (id INTEGER PRIMARY KEY, field_id TEXT NOT NULL UNIQUE);"
        "CREATE TABLE points (series INTEGER NOT NULL, ts INTEGER NOT NULL, num REAL, txt TEXT, "
        "PRIMARY KEY (series, ts)) WITHOUT ROWID;"
        f"INSERT INTO series VALUES (1, '{TEMP}'), (2, 'gw.1.2.mode');"
        f"INSERT INTO points VALUES (1, {T0}, 20.5, NULL), (1, {T0 + 5}, 21.0, NULL), (2, {T0}, NULL, 'heat');")
    db.commit()
    db.close()

    store = EmbeddedMetricStore(path, retention_days=0)
    try:
        assert raw(store) == [(0, 20.5), (5, 21.0)]
        assert raw(store, "gw.1.2.mode", "string") == [(0, "heat")]
        store.write([point(TEMP, 22.0, T0 + 6)])
        assert raw(store)[-1] == (6, 22.0)
    finally:
        store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'points'").fetchall() == []
    finally:
        db.close()


def test_retention_trims_a_chunk_that_straddles_the_cutoff(tmp_path: Path) -> None:
    now = [T0 + 10 * DAY]
    path = tmp_path / "m.sqlite3"
    store = EmbeddedMetricStore(path, retention_days=2, clock=lambda: now[0])
    try:
        store.write([point(TEMP, 1.0, now[0] - 3 * DAY), point(TEMP, 2.0, now[0] - 2 * DAY + 5),
                     point(TEMP, 3.0, now[0] - DAY)])
        store.write([point("gw.1.2.x", "old", now[0] - 5 * DAY, "string")])
        store.flush()
        assert store.prune() == 2
        assert [v for _t, v in raw(store)] == [2.0, 3.0]
        assert raw(store, "gw.1.2.x", "string") == []
        now[0] += DAY
        assert store.prune() == 1
        assert [v for _t, v in raw(store)] == [3.0]
    finally:
        store.close()


def _checkpointed_rows(path: Path) -> int:
    """Chunk rows in the database file itself: ``immutable=1`` reads it without the WAL."""
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks'").fetchone() is None:
            return 0  # not even the schema has reached the file yet
        return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    finally:
        db.close()


def test_wal_checkpoints_run_beside_the_writer_not_in_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.sqlite"
    store = EmbeddedMetricStore(path, retention_days=0, flush_interval_s=0.05, max_buffered=1)
    in_writer: list[str] = []
    original = EmbeddedMetricStore._checkpoint
    monkeypatch.setattr(EmbeddedMetricStore, "_checkpoint",
                        lambda self, db, now, mode="PASSIVE": (in_writer.append(mode), original(self, db, now, mode)))
    try:
        for ts in range(1, 6):
            store.write([point(TEMP, float(ts), ts)])  # a commit each (max_buffered=1)
        assert in_writer == []  # the write path itself never checkpoints
        deadline = time.monotonic() + 10
        while _checkpointed_rows(path) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _checkpointed_rows(path) == 5  # the thread moved the WAL into the file
    finally:
        store.close()
    assert in_writer == ["TRUNCATE"]  # close checkpoints before it returns
    assert store._checkpointer is not None and not store._checkpointer.is_alive()


def test_a_store_in_memory_or_without_an_interval_checkpoints_in_the_writer(tmp_path: Path) -> None:
    for store in (EmbeddedMetricStore(":memory:"), EmbeddedMetricStore(tmp_path / "m.sqlite", flush_interval_s=0)):
        assert store._checkpointer is None
        store.close()


def test_a_series_that_turns_to_text_while_held_keeps_every_point(tmp_path: Path) -> None:
    store = EmbeddedMetricStore(tmp_path / "m.sqlite", retention_days=0, flush_interval_s=3600)
    store.write_series([(point(TEMP, None, 0), [T0 + 1, T0 + 2], [1.5, 2.5])])  # held as float64s
    store.write([point(TEMP, "on", T0 + 3, "string"), point(TEMP, 4.5, T0 + 4)])  # text: held as a list now
    store.write_series([(point(TEMP, None, 0), [T0 + 5], [5.5])])
    assert isinstance(store._buffer[TEMP][1], list) and len(store._buffer[TEMP][0]) == 5
    assert [v for _t, v in raw(store)] == [1.5, 2.5, 4.5, 5.5]
    assert [v for _t, v in raw(store, metric_type="string")] == ["on"]
    store.close()


def test_a_failed_commit_keeps_the_held_points_for_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddedMetricStore(tmp_path / "m.sqlite", retention_days=0, flush_interval_s=3600)
    store.write([point(TEMP, 1.0, T0 + 1), point(TEMP, "x", T0 + 2, "string")])
    humidity = "gw.1.2.V_HUM"
    store.write([point(humidity, 50.0, T0 + 1)])

    def broken(sid: int, keys: list[int], values: list[object]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(metrics_embedded, "_pieces", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.flush()
    monkeypatch.undo()
    assert store._buffered == 3
    store.flush()
    assert [v for _t, v in raw(store)] == [1.0] and [v for _t, v in raw(store, humidity)] == [50.0]
    store.close()


def test_a_store_dropped_without_close_stops_its_checkpoint_thread(tmp_path: Path) -> None:
    import gc

    store = EmbeddedMetricStore(tmp_path / "m.sqlite", retention_days=0, flush_interval_s=0.05)
    thread = store._checkpointer
    assert thread is not None and thread.is_alive()
    del store
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()  # the thread held the store only weakly
