"""MyController v2's ``/api/gateway-sleeping-queue`` (list) and ``/clear``: commands the edge agent holds for
sleeping nodes, read from and cleared in the agent's own queue.

The queue lives where the gateway runs (the edge agent's disk). The local stack's agent is in this process, so its
queues are attached (``attach``) and answer directly. An edge in the field is reached through its device shadow, and
its queue is not reported there yet: for a gateway no attached source knows, the list is empty and a clear clears
nothing, and both say so (``reachable: false`` beside the reference's shape).
"""

from __future__ import annotations

from typing import Any

from ..core.model import Kind
from ..core.sleeping_queue import SleepingQueueSource, reference_message
from .records import Records


class SleepingQueues:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.source: SleepingQueueSource | None = None

    def attach(self, source: SleepingQueueSource) -> None:
        """The local stack's agent: its queues answer from now on."""
        self.source = source

    def listing(self, gateway_id: str, node_id: str | None) -> Any:
        """With ``node_id``: ``[message]``; without: ``{nodeId: [message]}`` (the reference's two answers)."""
        self.records.find(Kind.GATEWAY, gateway_id, "gatewayId")
        pending = self.source.pending(gateway_id, node_id) if self.source is not None else {}
        messages = {node: [reference_message(gateway_id, wire, index) for index, wire in enumerate(items)]
                    for node, items in pending.items()}
        if node_id:
            return messages.get(node_id, [])
        return messages

    def clear(self, gateway_id: str, node_id: str | None) -> dict[str, Any]:
        self.records.find(Kind.GATEWAY, gateway_id, "gatewayId")
        if self.source is None:
            return {"cleared": 0, "reachable": False}
        return {"cleared": self.source.clear(gateway_id, node_id), "reachable": True}
