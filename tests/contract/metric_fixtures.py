"""Builders shared by the metric store tests: points of a field, fixed times, store factories.

Times are fixed (2024-01-01T00:00:00Z onwards) so that expected rows can be written out; stores under contract
are opened with a retention long enough to keep them.
"""

from __future__ import annotations

from collections.abc import Callable
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
"""Stores that must pass the whole contract. InfluxDB needs a Flux server (none in CI): its Flux text and row
parsing are unit-tested, its writes go to VictoriaMetrics in ``tests/integration``."""
