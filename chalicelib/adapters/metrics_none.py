"""The metric store that keeps nothing (``METRICS=none``): for installs that want state but no history.

The reference offers the same choice; writes succeed so that the processor needs no special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.core.ports import MetricPoint, MetricQuery


class NoMetricStore:
    """``MetricStore`` that drops every point and answers every query with no rows."""

    def write(self, points: Sequence[MetricPoint]) -> None:
        """Accept and forget the points."""

    def query(self, query: MetricQuery) -> list[dict[str, Any]]:
        return []

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing is held."""
