"""The schedule registry of the local stack: the entries in a dict.

Only the bookkeeping for now: a timer thread that fires the entries (as EventBridge Scheduler does in AWS) is a
later step; until then nothing runs them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class LocalSchedule:
    name: str
    expression: str
    timezone: str
    payload: dict[str, Any]
    start: datetime | None = None
    end: datetime | None = None


class LocalScheduleRegistry:
    """``ScheduleRegistry`` in memory (thread-safe). ``entries`` maps names to what was put."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, LocalSchedule] = {}

    def put(self, name: str, expression: str, timezone: str, payload: dict[str, Any],
            start: datetime | None, end: datetime | None) -> None:
        with self._lock:
            self.entries[name] = LocalSchedule(name, expression, timezone, dict(payload), start, end)

    def delete(self, name: str) -> None:
        with self._lock:
            self.entries.pop(name, None)

    def names(self) -> set[str]:
        with self._lock:
            return set(self.entries)

    def get(self, name: str) -> LocalSchedule | None:
        with self._lock:
            return self.entries.get(name)
