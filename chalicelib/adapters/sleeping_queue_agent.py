"""The sleeping queues of an edge agent running in this process (the local stack's): each MySensors gateway
plugin's ``sleep_queue`` (``edge/gateways/mysensors/sleep_queue.py``, thread-safe), read and cleared as MyController
v2's API asks. Gateways without one (Tasmota, generic MQTT) have nothing queued."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class AgentSleepingQueues:
    def __init__(self, gateways: Callable[[], Mapping[str, Any]]) -> None:
        self.gateways = gateways
        """The agent's running gateway plugins by id (read at each call: gateways start and stop)."""

    def _queue(self, gateway_id: str) -> Any:
        return getattr(self.gateways().get(gateway_id), "sleep_queue", None)

    def pending(self, gateway_id: str, node_id: str | None) -> dict[str, list[Mapping[str, Any]]]:
        queue = self._queue(gateway_id)
        if queue is None:
            return {}
        nodes = [node_id] if node_id else sorted(queue.depth(), key=lambda n: (len(n), n))
        result: dict[str, list[Mapping[str, Any]]] = {}
        for node in nodes:
            entries = queue.pending(node)
            if entries:
                result[node] = [{**entry.downlink.to_wire(), "x": entry.expires_ms} for entry in entries]
        return result

    def clear(self, gateway_id: str, node_id: str | None) -> int:
        queue = self._queue(gateway_id)
        if queue is None:
            return 0
        nodes = [node_id] if node_id else list(queue.depth())
        return sum(int(queue.clear(node)) for node in nodes)
