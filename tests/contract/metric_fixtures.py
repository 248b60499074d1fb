"""Builders shared by the metric store tests: points of a field, fixed times, store factories.

Times are fixed (2024-01-01T00:00:00Z onwards) so that expected rows can be written out; stores under contract
are opened with a retention long enough to keep them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from chalicelib.core.model import iso_from_ms
from chalicelib.core.ports import MetricPoint, MetricQuery, MetricStore

T0: Final = 1_704_067_200_000
"""2024-01-01T00:00:00.000Z, a multiple of every window used in the tests."""
SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
CENTURY_DAYS: Final = 36_500.0


def point(field_id: str, metric_type: str, value: Any, ts: int) -> MetricPoint:
    """A point for ``gw.node.src.field`` with its tags taken from the id."""
    gateway, node, source, key = field_id.split(".")
    return MetricPoint(field_id, gateway, node, source, key, metric_type, value, ts)


def series(field_id: str, metric_type: str, values: dict[int, Any]) -> list[MetricPoint]:
    """Points from ``{timestamp_ms: value}``."""
    return [point(field_id, metric_type, value, ts) for ts, value in values.items()]


def at(ms: int) -> str:
    """The row time of an instant."""
    return iso_from_ms(ms)


def raw(field_id: str, metric_type: str, start: int, stop: int) -> MetricQuery:
    return MetricQuery(field_id=field_id, metric_type=metric_type, start_ms=start, stop_ms=stop)


def windowed(field_id: str, metric_type: str, start: int, stop: int, window: int, *functions: str) -> MetricQuery:
    return MetricQuery(field_id=field_id, metric_type=metric_type, start_ms=start, stop_ms=stop, window_ms=window,
                       functions=list(functions))


def embedded_file(tmp_path: Path) -> MetricStore:
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore

    return EmbeddedMetricStore(tmp_path / "metrics.sqlite3", retention_days=CENTURY_DAYS)


def embedded_memory(tmp_path: Path) -> MetricStore:
    from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore

    return EmbeddedMetricStore(":memory:", retention_days=CENTURY_DAYS)


STORE_FACTORIES: Final[dict[str, Callable[[Path], MetricStore]]] = {
    "embedded-file": embedded_file,
    "embedded-memory": embedded_memory,
}
"""The embedded stores under the whole contract. ``INFLUXDB_STORE`` runs it against the InfluxDB adapter too."""

INFLUXDB_STORE: Final = "influxdb-fake-server"
"""The InfluxDB adapter's contract parameter: ``InfluxDBMetricStore`` with the real influxdb-client, talking HTTP
to ``tests/contract/fake_influxdb.FakeInfluxDB`` (InfluxDB 2's write and query API, line protocol and the Flux
the adapter needs, from Flux's documented semantics). There is no InfluxDB 2 or Flux engine to run here: what a
real server would do differently is not covered (see that module's docstring)."""


class ReadAfterFlush:
    """A ``MetricStore`` that flushes before each read.

    The InfluxDB adapter's ``write`` hands points to influxdb-client's batching writer and returns; a background
    thread sends them. The contract reads right after writing, so reads of that adapter go after ``flush()``
    (which waits until the batch is sent), as a reader some time later would see them. Everything else is the
    adapter's own."""

    def __init__(self, inner: MetricStore) -> None:
        self.inner = inner
        self._written = threading.Event()

    def write(self, points: Sequence[MetricPoint]) -> None:
        self.inner.write(points)
        self._written.set()

    def query(self, query: MetricQuery) -> list[dict[str, Any]]:
        if self._written.is_set():  # nothing to wait for when nothing was written since the last flush
            self._written.clear()
            self.inner.flush()
        return self.inner.query(query)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def influxdb_store(url: str, bucket: str) -> MetricStore:
    """The InfluxDB adapter on ``url`` with the reference's measurement prefix, reads after a flush.

    A short flush interval: every writer the adapter closes (each ``flush``) leaves influxdb-client's batching
    timer pending on a non-daemon worker thread until the interval is over, which holds the process at exit."""
    from chalicelib.adapters.metrics_influxdb import InfluxDBMetricStore

    return ReadAfterFlush(InfluxDBMetricStore(url, token="contract-token", org="mycontroller", bucket=bucket,
                                              batch_size=1000, flush_interval_ms=50))
