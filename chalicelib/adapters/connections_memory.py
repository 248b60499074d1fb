"""``ConnectionStore`` in memory: the local stack's open websocket connections (they do not outlive the process,
so there is nothing to persist)."""

from __future__ import annotations

import copy
import threading
from typing import Any


class MemoryConnectionStore:
    """Thread-safe; records handed out are copies, so callers cannot change the stored ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[str, dict[str, Any]] = {}

    def put(self, connection: dict[str, Any]) -> None:
        record = copy.deepcopy(connection)
        record.setdefault("subscriptions", {})
        with self._lock:
            self._connections[str(record["connectionId"])] = record

    def get(self, connection_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._connections.get(connection_id)
            return copy.deepcopy(record) if record is not None else None

    def delete(self, connection_id: str) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)

    def list_all(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._connections.values()))

    def set_subscription(self, connection_id: str, subscription_id: str, filter_data: dict[str, Any]) -> bool:
        with self._lock:
            record = self._connections.get(connection_id)
            if record is None:
                return False
            record["subscriptions"][subscription_id] = copy.deepcopy(filter_data)
            return True

    def remove_subscription(self, connection_id: str, subscription_id: str) -> None:
        with self._lock:
            record = self._connections.get(connection_id)
            if record is not None:
                record["subscriptions"].pop(subscription_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)
