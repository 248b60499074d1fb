"""Provider ``mc_json``: values the edge already normalized (generic MQTT mappings, the system monitor).

One JSON object an envelope: ``{"n": node, "s": source, "f": field, "v": value, "m": metricType, "u": unit,
"nn": node name, "sn": source name, "fn": field name}``.
"""

from __future__ import annotations

import json
from typing import Any

from mycontroller_protocol.envelope import Downlink, Envelope
from mycontroller_protocol.ids import ID_PATTERN

from ...model import MetricType, Record
from ...ops import FieldValue, InterpretError, Op, json_object

_METRIC_TYPES = frozenset(m.value for m in MetricType)


def _segment(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InterpretError(f"mc_json {what} id {key!r} must be 1-128 id characters without dots, got {value!r}")
    return value


class McJsonInterpreter:
    provider = "mc_json"

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        data = json_object(envelope.raw, "mc_json message")
        metric_type = data.get("m", "none")
        if metric_type not in _METRIC_TYPES:
            raise InterpretError(f"mc_json metric type 'm' {metric_type!r} is not one of {sorted(_METRIC_TYPES)}")
        if "v" not in data:
            raise InterpretError("mc_json message has no value 'v'")
        value = data["v"]
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        return [FieldValue(
            node_id=_segment(data, "n", "node"),
            source_id=_segment(data, "s", "source"),
            field_id=_segment(data, "f", "field"),
            value=value,
            metric_type=metric_type,
            unit=str(data.get("u") or ""),
            name=str(data.get("fn") or ""),
            source_name=str(data.get("sn") or ""),
            node_name=str(data.get("nn") or ""),
        )]

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise InterpretError("mc_json gateways do not hand out node ids")
