"""The sleeping queue, as MyController v2's API shows it: commands an edge agent holds for smart-sleep nodes until
they wake (``edge/gateways/mysensors/sleep_queue.py`` keeps them), read and cleared through ``SleepingQueueSource``.

Pure: the port, and one queued downlink as the reference's message ``{id, gatewayId, nodeId, sourceId, type,
payloads[{key, value, metricType, unit, labels, others}], labels, isAck, isReceived, isAckEnabled, isSleepNode,
timestamp, validity}`` (a MySensors line read back into its parts; other providers' commands carry their text).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from mycontroller_protocol.mysensors.protocol import type_name

from .model import Record, iso_from_ms

_TYPES: Final = {1: "set", 2: "request", 3: "action", 4: "action", 0: "presentation"}


class SleepingQueueSource(Protocol):
    """Where the queued commands live (the edge agent's queues); the local stack's reads its agent."""

    def pending(self, gateway_id: str, node_id: str | None) -> dict[str, list[Mapping[str, Any]]]:
        """Node id → its queued downlinks (``Downlink.to_wire`` form with ``x`` the expiry, ms), oldest first."""
        ...

    def clear(self, gateway_id: str, node_id: str | None) -> int:
        """Drop the queued commands of one node (``None``: every node of the gateway); how many were dropped."""
        ...


def reference_message(gateway_id: str, wire: Mapping[str, Any], index: int = 0) -> Record:
    """One queued downlink in the reference's message shape."""
    raw = str(wire.get("r") or "").rstrip("\n")
    parts = raw.split(";", 5)
    node_id, source_id, kind, key, value = str(wire.get("n") or ""), "", "set", "", raw
    if str(wire.get("p")) in ("mysensors_v2", "mysensors") and len(parts) == 6 and all(p.isdigit() for p in parts[:5]):
        node_id, source_id = parts[0], parts[1]
        command, type_id = int(parts[2]), int(parts[4])
        kind = _TYPES.get(command, "set")
        try:
            key = type_name(command, type_id)
        except (ValueError, KeyError):
            key = str(type_id)
        value = parts[5]
    elif wire.get("o"):
        key = str(wire["o"]).rsplit("/", 1)[-1]
    expires = wire.get("x")
    return {
        "id": f"{gateway_id}.{node_id}.{index}", "gatewayId": gateway_id, "nodeId": node_id, "sourceId": source_id,
        "type": kind, "payloads": [{"key": key, "value": value, "metricType": "", "unit": "", "labels": {},
                                    "others": {}}],
        "labels": {}, "isAck": False, "isReceived": False, "isAckEnabled": False, "isSleepNode": True,
        "timestamp": "", "validity": iso_from_ms(int(expires)) if isinstance(expires, int) else "",
    }
