"""ESPHome messages from the edge → processor operations, after MyController v2's ESPHome provider.

One ESPHome device is a node (its id the key of the gateway's ``nodes``, or its mDNS name), each entity a source
(its ``object_id``; the edge prefixes the kind when two entities of a device share one), and each entity's state
fields are fields: ``state`` for the one-value kinds (sensor, binary_sensor, text_sensor, switch, number,
select, text, lock), and for lights ``state``, ``brightness`` (%), ``rgb`` (``#rrggbb``), ``color_temperature``
(mired), ``white`` (%), ``effect``; covers ``position`` and ``tilt`` (%), ``state`` (open/closed) and
``current_operation``; fans ``state``, ``speed_level``, ``oscillating``, ``direction``, ``preset_mode``;
climates ``mode``, ``action``, ``current_temperature`` and ``target_temperature[_low|_high]``; buttons
``press`` (metric type none, so there is a field to act on); events ``event_type``.

Metric types follow the kind (a sensor is a gauge_float in its ``unit_of_measurement``, a binary sensor a
binary…); the source is labelled with the kind (``esphome_type``), its device class and entity category, so
that the console and rules can tell a restart button from a light.
"""

from __future__ import annotations

import json
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink, Envelope
from mycontroller_protocol.esphome.codec import (
    BRIGHTNESS,
    COLOR_TEMPERATURE,
    CURRENT_OPERATION,
    EFFECT,
    EVENT_TYPE,
    POSITION,
    PRESS,
    PROVIDER,
    RGB,
    STATE,
    TILT,
    WHITE,
    hex_rgb,
)
from mycontroller_protocol.ids import ID_PATTERN

from ...model import Record
from ...ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op, SourceInfo, json_object

KIND_LABEL: Final = "esphome_type"
"""Source label holding the entity's kind (``sensor``, ``light``, ``button``…)."""

_SCALAR: Final[dict[str, str]] = {
    "sensor": "gauge_float",
    "binary_sensor": "binary",
    "text_sensor": "string",
    "switch": "binary",
    "number": "gauge_float",
    "select": "string",
    "text": "string",
    "lock": "string",
    "siren": "binary",
}
"""Kinds whose state is one value, with the metric type of their ``state`` field."""

_FAN_FIELDS: Final[dict[str, str]] = {"state": "binary", "speed_level": "gauge", "oscillating": "binary",
                                      "direction": "string", "preset_mode": "string"}
_CLIMATE_FIELDS: Final[dict[str, str]] = {"mode": "string", "action": "string", "fan_mode": "string",
                                          "preset": "string", "current_temperature": "gauge_float",
                                          "target_temperature": "gauge_float",
                                          "target_temperature_low": "gauge_float",
                                          "target_temperature_high": "gauge_float",
                                          "current_humidity": "gauge_float", "target_humidity": "gauge_float"}
_CLIMATE_UNITS: Final = frozenset({"current_temperature", "target_temperature", "target_temperature_low",
                                   "target_temperature_high"})
_NODE_OTHERS: Final[dict[str, str]] = {
    "mac": "mac_address",
    "model": "model",
    "mf": "manufacturer",
    "built": "compilation_time",
    "proj": "project_name",
    "name": "esphome_name",
    "sleep": "has_deep_sleep",
}
_SOURCE_LABELS: Final[dict[str, str]] = {"dc": "device_class", "ec": "entity_category", "sc": "state_class"}


def _id(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InterpretError(f"ESPHome {what} id {key!r} must be 1-128 id characters without dots, got {value!r}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InterpretError(f"ESPHome {what} must be a number, got {value!r}")
    return float(value)


class EspHomeInterpreter:
    """Stateless: every message carries what it needs (the edge holds the entity list)."""

    provider = PROVIDER

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        data = json_object(envelope.raw, "ESPHome message")
        kind = data.get("t")
        if kind == "state":
            return self._state(data)
        if kind == "entity":
            return self._entity(data)
        if kind == "device":
            return self._device(data)
        if kind == "offline":
            node = _id(data, "n", "node")
            return [NodeState(node, "down", str(data.get("m") or "connection lost")[:300])]
        raise InterpretError(f"ESPHome message type 't' must be device, entity, state or offline, got {kind!r}")

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        """ESPHome devices never ask the controller for a value."""
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise InterpretError("ESPHome devices are named in the gateway config or by mDNS; they never ask for an id")

    # ----------------------------------------------------------------------------------------- device, entity

    @staticmethod
    def _device(data: dict[str, Any]) -> list[Op]:
        node = _id(data, "n", "node")
        others: dict[str, Any] = {}
        for key, target in _NODE_OTHERS.items():
            value = data.get(key)
            if value not in (None, ""):
                others[target] = value
        address = data.get("addr")
        if isinstance(address, str) and address:
            others["ip_address"] = address
            port = data.get("web")
            if isinstance(port, int) and not isinstance(port, bool) and port > 0:
                others["node_web_url"] = f"http://{address}" + ("" if port == 80 else f":{port}")
        labels = {}
        if data.get("ver"):
            labels["library_version"] = str(data["ver"])
        if data.get("pver"):
            labels["version"] = str(data["pver"])
        name = data.get("fn") or data.get("name")
        return [NodeInfo(node, name=str(name) if name else None, labels=labels, others=others), NodeSeen(node)]

    @staticmethod
    def _entity(data: dict[str, Any]) -> list[Op]:
        node = _id(data, "n", "node")
        source = _id(data, "s", "source")
        kind = data.get("k")
        if not isinstance(kind, str) or not kind:
            raise InterpretError(f"ESPHome entity {source!r} has no kind 'k'")
        labels = {KIND_LABEL: kind}
        for key, label in _SOURCE_LABELS.items():
            if data.get(key):
                labels[label] = str(data[key])
        for key in ("min", "max", "step"):
            if isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool):
                labels[key] = f"{data[key]:g}"
        if isinstance(data.get("opts"), list):
            labels["options"] = json.dumps([str(o) for o in data["opts"]], ensure_ascii=False)
        if isinstance(data.get("fx"), list) and data["fx"]:
            labels["effects"] = json.dumps([str(o) for o in data["fx"]], ensure_ascii=False)
        if isinstance(data.get("modes"), list) and data["modes"]:
            labels["color_modes"] = ",".join(str(o) for o in data["modes"])
        name = data.get("name")
        ops: list[Op] = [SourceInfo(node, source, name=str(name) if name else None, labels=labels)]
        if kind == "button":  # no state ever comes: the field that presses it is made here
            ops.append(FieldValue(node, source, PRESS, "", "none", "", "Press"))
        return ops

    # ----------------------------------------------------------------------------------------- states

    def _state(self, data: dict[str, Any]) -> list[Op]:
        node = _id(data, "n", "node")
        source = _id(data, "s", "source")
        kind = data.get("k")
        if "v" not in data:
            raise InterpretError(f"ESPHome state of {source!r} has no value 'v'")
        value = data["v"]
        unit = str(data.get("u") or "")
        scalar = _SCALAR.get(kind) if isinstance(kind, str) else None
        if scalar is not None:
            if isinstance(value, dict | list) or value is None:
                raise InterpretError(f"ESPHome {kind} {source!r} state must be one value, got {value!r}")
            if scalar == "gauge_float":
                _number(value, f"{kind} {source!r} state")
            return [FieldValue(node, source, STATE, value, scalar, unit if scalar == "gauge_float" else "")]
        if kind == "event":
            return [FieldValue(node, source, EVENT_TYPE, str(value), "string")]
        if not isinstance(value, dict):
            raise InterpretError(f"ESPHome {kind} {source!r} state must be an object, got {value!r}")
        if kind == "light":
            return self._light(node, source, value)
        if kind == "cover" or kind == "valve":
            return self._cover(node, source, value)
        if kind == "fan":
            return self._typed(node, source, value, _FAN_FIELDS, "")
        if kind == "climate":
            return self._typed(node, source, value, _CLIMATE_FIELDS, unit or "°C")
        raise InterpretError(f"ESPHome entity kind {kind!r} of {source!r} is not one we read")

    @staticmethod
    def _light(node: str, source: str, value: dict[str, Any]) -> list[Op]:
        ops: list[Op] = []
        if "state" in value:
            ops.append(FieldValue(node, source, STATE, bool(value["state"]), "binary"))
        for field in (BRIGHTNESS, WHITE):
            if field in value:
                level = _number(value[field], f"light {source!r} {field}")
                ops.append(FieldValue(node, source, field, round(level * 100, 1), "gauge_float", "%"))
        if RGB in value:
            channels = value[RGB]
            if not isinstance(channels, list) or len(channels) != 3:
                raise InterpretError(f"ESPHome light {source!r} rgb must be three channels, got {channels!r}")
            red, green, blue = (_number(c, f"light {source!r} rgb") for c in channels)
            ops.append(FieldValue(node, source, RGB, hex_rgb(red, green, blue), "string"))
        if COLOR_TEMPERATURE in value:
            mireds = _number(value[COLOR_TEMPERATURE], f"light {source!r} color_temperature")
            ops.append(FieldValue(node, source, COLOR_TEMPERATURE, round(mireds, 1), "gauge_float", "mired"))
        if value.get(EFFECT):
            ops.append(FieldValue(node, source, EFFECT, str(value[EFFECT]), "string"))
        return ops or [NodeSeen(node)]

    @staticmethod
    def _cover(node: str, source: str, value: dict[str, Any]) -> list[Op]:
        ops: list[Op] = []
        for field in (POSITION, TILT):
            if field in value:
                level = _number(value[field], f"cover {source!r} {field}")
                ops.append(FieldValue(node, source, field, round(level * 100, 1), "gauge_float", "%"))
        if "closed" in value:
            ops.append(FieldValue(node, source, STATE, "closed" if value["closed"] else "open", "string"))
        if value.get("op"):
            ops.append(FieldValue(node, source, CURRENT_OPERATION, str(value["op"]), "string"))
        return ops or [NodeSeen(node)]

    @staticmethod
    def _typed(node: str, source: str, value: dict[str, Any], fields: dict[str, str], unit: str) -> list[Op]:
        ops: list[Op] = []
        for key, item in value.items():
            metric_type = fields.get(key)
            if metric_type is None or item is None or isinstance(item, dict | list):
                continue
            if metric_type in ("gauge_float", "gauge"):
                _number(item, f"{source!r} {key}")
            field_unit = unit if key in _CLIMATE_UNITS else ("%" if key.endswith("humidity") else "")
            ops.append(FieldValue(node, source, key, item, metric_type, field_unit))
        return ops or [NodeSeen(node)]
