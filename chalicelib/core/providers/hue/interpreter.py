"""Philips Hue resources from the edge → processor operations, after MyController v2's Hue provider.

Nodes are the bridge's devices (a lamp, a motion sensor, a dimmer switch), rooms and zones, with their v2 ids;
their services are sources (see ``codec``) with these fields:

* ``light`` and ``grouped_light`` (a room's or zone's lights as one): ``on`` (binary), ``brightness``
  (gauge_float, %), ``color_temperature`` (gauge, mired: the bridge's mirek), ``color`` (string ``#rrggbb``,
  from the CIE xy the bridge reports) — each only when the lamp has it;
* ``motion``: ``motion`` (binary); ``temperature``: ``temperature`` (gauge_float, °C); ``light_level``:
  ``light_level`` (gauge_float, lx);
* ``button_<n>``: ``event`` (string: ``initial_press``, ``short_release``, ``long_press``, ``long_release``…).

A device's ``device_power`` is its node's battery (``others.battery_level``, also a metric, and
``battery_state``); ``zigbee_connectivity`` other than ``connected`` marks the node down. Readings the bridge
flags invalid (``motion_valid: false``…) are skipped.
"""

from __future__ import annotations

from typing import Any, Final

from mycontroller_protocol.envelope import Downlink, Envelope
from mycontroller_protocol.hue.codec import (
    BRIGHTNESS,
    COLOR,
    COLOR_TEMPERATURE,
    EVENT,
    LIGHT_LEVEL,
    MOTION,
    ON,
    PROVIDER,
    TEMPERATURE,
    lux,
    xy_to_hex,
)
from mycontroller_protocol.ids import ID_PATTERN

from ...model import Record
from ...ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op, json_object

TYPE_LABEL: Final = "hue_type"
"""Node label: ``device``, ``room`` or ``zone``."""

_GROUPS: Final = frozenset({"room", "zone"})
_IGNORED: Final = frozenset({"bridge", "bridge_home", "entertainment", "entertainment_configuration", "scene",
                             "geofence_client", "geolocation", "homekit", "matter", "matter_fabric",
                             "behavior_script", "behavior_instance", "device_software_update", "smart_scene",
                             "zgp_connectivity", "tamper", "service_group", "motion_area_configuration",
                             "convenience_area_motion", "security_area_motion", "grouped_motion",
                             "grouped_light_level", "relative_rotary", "bell_button", "camera_motion", "contact",
                             "speaker", "clip"})
"""Resource types the edge may pass on that hold nothing we map (yet)."""


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InterpretError(f"Hue {what} id must be 1-128 id characters without dots, got {value!r}")
    return value


def _part(resource: dict[str, Any], key: str) -> dict[str, Any]:
    value = resource.get(key)
    return value if isinstance(value, dict) else {}


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InterpretError(f"Hue {what} must be a number, got {value!r}")
    return float(value)


def _report(feature: dict[str, Any], report_key: str, value_key: str) -> Any:
    """A sensor's reading: its ``*_report`` when the bridge sends one, else the older flat value (unless the
    bridge says it is not valid)."""
    report = feature.get(report_key)
    if isinstance(report, dict) and value_key in report:
        return report[value_key]
    if feature.get(f"{value_key}_valid") is False:
        return None
    return feature.get(value_key)


class HueInterpreter:
    """Stateless: the edge names node and source with every resource."""

    provider = PROVIDER

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        data = json_object(envelope.raw, "Hue message")
        node = _id(data.get("n"), "node")
        resource = data.get("r")
        if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
            raise InterpretError("Hue message needs a resource 'r' with its 'type'")
        kind = resource["type"]
        if kind == "device" or kind in _GROUPS:
            return self._node(node, kind, resource)
        if kind == "device_power":
            return self._power(node, resource)
        if kind == "zigbee_connectivity":
            status = str(resource.get("status") or "")
            if not status or status == "connected":
                return [NodeSeen(node)]
            return [NodeState(node, "down", f"zigbee {status}")]
        if kind in _IGNORED:
            return []
        source = _id(data.get("s"), "source")
        if kind == "light" or kind == "grouped_light":
            return self._light(node, source, resource)
        if kind == "motion":
            value = _report(_part(resource, "motion"), "motion_report", "motion")
            return [FieldValue(node, source, MOTION, bool(value), "binary", "", "Motion")] if value is not None \
                else [NodeSeen(node)]
        if kind == "temperature":
            value = _report(_part(resource, "temperature"), "temperature_report", "temperature")
            if value is None:
                return [NodeSeen(node)]
            return [FieldValue(node, source, TEMPERATURE, round(_number(value, "temperature"), 2), "gauge_float",
                               "°C", "Temperature")]
        if kind == "light_level":
            value = _report(_part(resource, "light"), "light_level_report", "light_level")
            if value is None:
                return [NodeSeen(node)]
            return [FieldValue(node, source, LIGHT_LEVEL, lux(_number(value, "light_level")), "gauge_float", "lx",
                               "Light level")]
        if kind == "button":
            button = _part(resource, "button")
            event = _report(button, "button_report", "event")
            if event is None:
                event = button.get("last_event")
            return [FieldValue(node, source, EVENT, str(event), "string", "", "Event")] if event else \
                [NodeSeen(node)]
        raise InterpretError(f"Hue resource type {kind!r} is not one we read")

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        """Hue devices never ask the controller for a value."""
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise InterpretError("Hue resources have the bridge's ids; they never ask for one")

    # ----------------------------------------------------------------------------------------- nodes

    @staticmethod
    def _node(node: str, kind: str, resource: dict[str, Any]) -> list[Op]:
        metadata = _part(resource, "metadata")
        product = _part(resource, "product_data")
        others: dict[str, Any] = {}
        for key, target in (("model_id", "model_id"), ("manufacturer_name", "manufacturer"),
                            ("product_name", "product_name")):
            if product.get(key):
                others[target] = product[key]
        if metadata.get("archetype"):
            others["archetype"] = metadata["archetype"]
        if resource.get("id_v1"):
            others["hue_id_v1"] = resource["id_v1"]
        labels = {TYPE_LABEL: kind}
        if product.get("software_version"):
            labels["version"] = str(product["software_version"])
        name = metadata.get("name")
        ops: list[Op] = [NodeInfo(node, name=str(name) if name else None, labels=labels, others=others)]
        if kind == "device":
            ops.append(NodeSeen(node))
        return ops

    @staticmethod
    def _power(node: str, resource: dict[str, Any]) -> list[Op]:
        power = _part(resource, "power_state")
        others: dict[str, Any] = {}
        level = power.get("battery_level")
        metric = None
        if isinstance(level, int | float) and not isinstance(level, bool):
            others["battery_level"] = level
            metric = ("battery_level", "gauge", float(level))
        if power.get("battery_state"):
            others["battery_state"] = power["battery_state"]
        return [NodeInfo(node, others=others, metric=metric)] if others else [NodeSeen(node)]

    @staticmethod
    def _light(node: str, source: str, resource: dict[str, Any]) -> list[Op]:
        ops: list[Op] = []
        on = _part(resource, "on")
        if "on" in on:
            ops.append(FieldValue(node, source, ON, bool(on["on"]), "binary", "", "On"))
        dimming = _part(resource, "dimming")
        if "brightness" in dimming:
            ops.append(FieldValue(node, source, BRIGHTNESS, round(_number(dimming["brightness"], "brightness"), 2),
                                  "gauge_float", "%", "Brightness"))
        temperature = _part(resource, "color_temperature")
        mirek = temperature.get("mirek")
        if mirek is not None and temperature.get("mirek_valid", True):
            ops.append(FieldValue(node, source, COLOR_TEMPERATURE, round(_number(mirek, "mirek")), "gauge", "mired",
                                  "Colour temperature"))
        xy = _part(_part(resource, "color"), "xy")
        if "x" in xy and "y" in xy:
            ops.append(FieldValue(node, source, COLOR, xy_to_hex(_number(xy["x"], "color x"),
                                                                 _number(xy["y"], "color y")), "string", "",
                                  "Colour"))
        return ops or [NodeSeen(node)]
