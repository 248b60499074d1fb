"""Hue v2 resources at the edge: which node and source each belongs to, and the part of it that goes up.

The bridge names everything by UUID and links services to their owner (``owner.rid``, a device's or a room's
``services``). This index is rebuilt from the bridge's devices, rooms and zones whenever they change, so that a
resource in an event can be sent up with its node and source, and a command for node and source can find the
light or grouped light to change. Pure functions over plain dicts (the bridge's JSON), so they are tested
without a bridge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

NODE_TYPES: Final = frozenset({"device", "room", "zone"})
SERVICE_TYPES: Final = frozenset({"light", "grouped_light", "motion", "temperature", "light_level", "button",
                                  "device_power", "zigbee_connectivity"})
"""What goes up: nodes, and the services the cloud's Hue interpreter reads."""
SETTABLE: Final = frozenset({"light", "grouped_light"})

_KEEP: Final[dict[str, tuple[str, ...] | None]] = {
    "id": None, "type": None, "id_v1": None, "owner": None, "enabled": None, "status": None,
    "metadata": ("name", "archetype", "control_id"),
    "product_data": ("model_id", "manufacturer_name", "product_name", "software_version"),
    "on": ("on",),
    "dimming": ("brightness",),
    "color_temperature": ("mirek", "mirek_valid"),
    "color": ("xy",),
    "motion": ("motion", "motion_valid", "motion_report"),
    "temperature": ("temperature", "temperature_valid", "temperature_report"),
    "light": ("light_level", "light_level_valid", "light_level_report"),
    "button": ("last_event", "button_report"),
    "power_state": ("battery_level", "battery_state"),
}
"""Top-level keys kept, and within each the keys kept (None: all of it)."""
_REPORT_DROP: Final = frozenset({"changed", "updated"})


def trim(resource: dict[str, Any]) -> dict[str, Any]:
    """The parts of a resource the cloud reads (a lamp's full JSON is 2 KB: gamut, effects, powerup…)."""
    out: dict[str, Any] = {}
    for key, keep in _KEEP.items():
        if key not in resource or resource[key] is None:
            continue
        value = resource[key]
        if keep is not None and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in keep and v is not None}
            for report in [k for k in value if k.endswith("_report") and isinstance(value[k], dict)]:
                value[report] = {k: v for k, v in value[report].items() if k not in _REPORT_DROP}
        out[key] = value
    if out.get("type") not in NODE_TYPES:  # a service: its device or room has the name and the v1 id
        out.pop("id_v1", None)
        if out.get("type") != "button":
            out.pop("metadata", None)
    return out


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass
class HueIndex:
    """Resource id → (node, source), and (node, source) → the light or grouped light to command."""

    places: dict[str, tuple[str, str]] = field(default_factory=dict)
    targets: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    """Node id → its resource type (device, room, zone)."""

    @classmethod
    def build(cls, resources: list[dict[str, Any]]) -> HueIndex:
        """From the bridge's resources (at least its devices, rooms, zones and buttons)."""
        index = cls()
        by_id = {r.get("id"): r for r in resources}
        for resource in resources:
            kind = resource.get("type")
            if kind not in NODE_TYPES:
                continue
            node = str(resource["id"])
            index.nodes[node] = str(kind)
            counts: dict[str, int] = {}
            for service in resource.get("services") or []:
                rtype, rid = service.get("rtype"), service.get("rid")
                if rtype not in SERVICE_TYPES or not rid:
                    continue
                if kind != "device" and rtype != "grouped_light":
                    continue  # a room lists its members' services too; they belong to their devices
                counts[rtype] = counts.get(rtype, 0) + 1
                if rtype == "button":
                    control = ((by_id.get(rid) or {}).get("metadata") or {}).get("control_id")
                    source = f"button_{control}" if control is not None else f"button_{counts[rtype]}"
                else:
                    source = rtype if counts[rtype] == 1 else f"{rtype}_{counts[rtype]}"
                index.places[rid] = (node, source)
                if rtype in SETTABLE:
                    index.targets[(node, source)] = (rtype, rid)
        return index

    def message(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """What goes up for a resource: ``{"n", "s", "r"}``, or None for a resource of no node we know."""
        kind = resource.get("type")
        rid = resource.get("id")
        if kind in NODE_TYPES:
            return {"n": rid, "r": trim(resource)}
        if kind not in SERVICE_TYPES or rid not in self.places:
            return None
        node, source = self.places[rid]
        return {"n": node, "s": source, "r": trim(resource)}
