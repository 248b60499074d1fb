"""Generic MQTT: JSON (or plain) payloads mapped to node/source/field at the edge, sent up as ``mc_json``.

The cloud cannot guess what ``{"t": 21.5}`` on ``home/kitchen/sensors`` means; the user says it once in the
gateway config, and the edge turns each value into one normalized message.

Config::

    provider:
      type: generic
      protocol: {type: mqtt, broker: tcp://127.0.0.1:1883, subscribe: "home/+/sensors",
                 publish: "home/{node}/set/{field}"}
      mappings:
        - topic: home/+/sensors          # MQTT filter; the first mapping that matches wins
          node: "{1}"                   # "{i}": topic level i (0-based); "$.a.b": from the payload; else literal
          source: sensors
          nodeName: "$.name"            # optional, same rules
          fields:                       # optional: without it every top-level value becomes a field
            - {path: "$.temperature", id: temperature, metricType: gauge_float, unit: "°C", name: Temperature}
                                        # path "$" is the whole payload (plain "21.5"); id may use "{i}" too

Downlinks (provider ``mc_json``) carry ``{"n","s","f","v"}``; the value is published to ``publish`` (or to the
downlink's own topic) with ``{node}``, ``{source}``, ``{field}`` filled in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mycontroller_protocol.envelope import Downlink

from ..errors import EdgeError
from .mqtt_base import MqttGateway
from .transport import split_topics, topic_matches
from .util import clean_id

_METRIC_TYPES = frozenset({"none", "string", "counter", "gauge", "gauge_float", "binary", "geo"})
_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")
_TOPIC_LEVEL = re.compile(r"\{(\d+)\}")
_MISSING = object()


class MappingError(EdgeError, ValueError):
    """A mapping in the gateway config that cannot work; raised at start so the user sees it at once."""


def get_path(data: Any, path: str) -> Any:
    """A JSONPath-lite lookup: ``$``, ``$.a.b``, ``$.list[0].x``, ``$['odd key']``, or plain ``a.b``.

    Returns ``_MISSING`` when a step does not exist.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    elif text:
        text = "." + text
    current = data
    pos = 0
    for match in _PATH_TOKEN.finditer(text):
        if match.start() != pos:
            return _MISSING
        pos = match.end()
        key, index, quoted = match.groups()
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return _MISSING
            current = current[int(index)]
        else:
            name = key if key is not None else quoted
            if not isinstance(current, dict) or name not in current:
                return _MISSING
            current = current[name]
    return current if pos == len(text) else _MISSING


def guess_metric_type(value: Any) -> str:
    if isinstance(value, bool):
        return "binary"
    if isinstance(value, int):
        return "gauge"
    if isinstance(value, float):
        return "gauge_float"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "string"
        return "gauge_float"
    return "string"


@dataclass(slots=True)
class FieldSpec:
    path: str
    id: str
    metric_type: str | None
    unit: str
    name: str


@dataclass(slots=True)
class Mapping:
    topic: str
    node: str
    source: str
    node_name: str = ""
    source_name: str = ""
    fields: list[FieldSpec] = field(default_factory=list)

    @classmethod
    def from_config(cls, item: dict[str, Any], default_topic: str) -> Mapping:
        if not isinstance(item, dict):
            raise MappingError(f"a mapping must be an object, got {item!r}")
        fields: list[FieldSpec] = []
        for spec in item.get("fields") or []:
            if not isinstance(spec, dict) or not spec.get("path"):
                raise MappingError(f"a field mapping needs a 'path': {spec!r}")
            path = str(spec["path"])
            metric_type = spec.get("metricType")
            if metric_type is not None and metric_type not in _METRIC_TYPES:
                raise MappingError(f"metricType {metric_type!r} of {path!r} is not one of {sorted(_METRIC_TYPES)}")
            default_id = re.split(r"[.\[\]'\"$]+", path.strip("$.[]'\""))[-1] or "value"
            fields.append(FieldSpec(path=path, id=str(spec.get("id") or default_id), metric_type=metric_type,
                                    unit=str(spec.get("unit") or ""), name=str(spec.get("name") or "")))
        topic = str(item.get("topic") or default_topic)
        if not topic:
            raise MappingError(f"a mapping needs a 'topic': {item!r}")
        return cls(topic=topic, node=str(item.get("node") or "{1}"), source=str(item.get("source") or "default"),
                   node_name=str(item.get("nodeName") or ""), source_name=str(item.get("sourceName") or ""),
                   fields=fields)


def resolve(template: str, levels: list[str], data: Any) -> str:
    """``{i}`` → topic level i; ``$…`` → a payload value; anything else is literal."""
    if template.startswith("$"):
        value = get_path(data, template)
        return "" if value is _MISSING or value is None else str(value)

    def level(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return levels[index] if index < len(levels) else ""

    return _TOPIC_LEVEL.sub(level, template)


class GenericMqttGateway(MqttGateway):
    provider: ClassVar[str] = "mc_json"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: Any) -> None:
        provider = config.get("provider") or {}
        protocol = provider.get("protocol") or {}
        raw_mappings = provider.get("mappings") or protocol.get("mappings") or config.get("mappings") or []
        default_topic = (split_topics(protocol.get("subscribe")) or [""])[0]
        self.mappings = [Mapping.from_config(item, default_topic) for item in raw_mappings]
        super().__init__(gateway_id, config, ctx)
        self.publish_template = self.settings.publish
        self.counters.update({"invalid_json": 0, "missing_values": 0, "unmapped": 0})

    def subscriptions(self) -> Sequence[str]:
        return [m.topic for m in self.mappings] or ("#",)

    def extract(self, topic: str, payload: bytes) -> list[dict[str, Any]]:
        """The normalized messages one publish yields (possibly none: counted, never raised)."""
        mapping = next((m for m in self.mappings if topic_matches(m.topic, topic)), None)
        if mapping is None:
            self.counters["unmapped"] += 1
            return []
        text = payload.decode("utf-8", errors="replace").strip()
        try:
            data: Any = json.loads(text)
            is_json = True
        except ValueError:
            data, is_json = text, False
        needs_json = any(spec.path.strip() not in ("$", "") for spec in mapping.fields) or (
            not mapping.fields and text.startswith(("{", "[")))
        if needs_json and not isinstance(data, dict | list):
            self.counters["invalid_json"] += 1
            self.invalid(f"payload on {topic!r} is not a JSON object: {text[:80]!r}")
            return []
        levels = topic.split("/")
        node = clean_id(resolve(mapping.node, levels, data), "")
        source = clean_id(resolve(mapping.source, levels, data), "")
        if not node or not source:
            self.invalid(f"no node/source id for {topic!r} from {mapping.node!r}/{mapping.source!r}")
            return []
        base: dict[str, Any] = {"n": node, "s": source}
        names = {"nn": resolve(mapping.node_name, levels, data) if mapping.node_name else "",
                 "sn": resolve(mapping.source_name, levels, data) if mapping.source_name else ""}
        out: list[dict[str, Any]] = []
        for field_id, value, metric_type, unit, name in self._values(mapping, data, is_json, levels):
            if "{" in field_id or field_id.startswith("$"):
                field_id = resolve(field_id, levels, data)
            message = {**base, "f": clean_id(field_id, "value"), "v": value, "m": metric_type, "u": unit}
            message.update({k: v for k, v in names.items() if v})
            if name:
                message["fn"] = name
            out.append(message)
        return out

    def _values(self, mapping: Mapping, data: Any, is_json: bool, levels: list[str]
                ) -> list[tuple[str, Any, str, str, str]]:
        if mapping.fields:
            values = []
            for spec in mapping.fields:
                value = get_path(data, spec.path) if spec.path.strip() not in ("", "$") else data
                if value is _MISSING or value is None:
                    self.counters["missing_values"] += 1
                    continue
                if isinstance(value, dict | list):
                    value = json.dumps(value, separators=(",", ":"))
                values.append((spec.id, value, spec.metric_type or guess_metric_type(value), spec.unit, spec.name))
            return values
        if isinstance(data, dict):  # no field list: every top-level scalar is a field
            return [(key, value, guess_metric_type(value), "", "") for key, value in data.items()
                    if isinstance(value, str | int | float | bool)]
        if is_json and isinstance(data, list):
            return []
        return [(levels[-1] or "value", data, guess_metric_type(data), "", "")]

    def handle_publish(self, topic: str, payload: bytes) -> None:
        for message in self.extract(topic, payload):
            self.emit(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    async def send(self, downlink: Downlink) -> None:
        """``{"n","s","f","v"}`` → the value, published to the ``publish`` template or the downlink's topic."""
        try:
            data = json.loads(downlink.raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or "v" not in data:
            self.invalid(f"mc_json downlink must be a JSON object with 'v': {downlink.raw[:80]!r}")
            return
        names = {"node": data.get("n", ""), "source": data.get("s", ""), "field": data.get("f", "")}
        template = downlink.topic or self.publish_template
        if not template:
            self.invalid(f"no 'publish' topic configured for downlink {downlink.raw[:80]!r}")
            return
        topic = template
        for key, value in names.items():
            topic = topic.replace("{" + key + "}", str(value))
        value = data["v"]
        payload = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        await self.publish(topic, payload)
