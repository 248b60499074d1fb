"""Tasmota's MQTT wire form: topics in, node ids out, and command topics and payloads back.

Tasmota publishes on its FullTopic, ``%prefix%/%topic%/`` by default (``tele/kitchen_plug/STATE``), where
``%prefix%`` is ``tele`` (telemetry), ``stat`` (command results, status) or ``cmnd`` (commands, our own echoes)
and ``%topic%`` is the device's name. Installations move things around (``home/%prefix%/%topic%/``,
``%topic%/%prefix%/``), so a topic is read by finding which segment is the prefix. Topics repeat across a fleet
(one per device and command), so parsing is cached.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Final, NamedTuple

from ..errors import ProtocolError
from ..ids import ID_PATTERN
from ..values import ConversionError, to_binary

PREFIXES: Final = frozenset({"tele", "stat", "cmnd"})
DEFAULT_FULL_TOPIC: Final = "%prefix%/%topic%/"
"""Tasmota's default FullTopic; a node's ``others.tasmota_full_topic`` says when a device uses another."""

TOPIC_KEY: Final = "tasmota_topic"
"""Node ``others`` key holding the device's own ``%topic%`` when the node id had to be sanitized from it."""
FULL_TOPIC_KEY: Final = "tasmota_full_topic"
"""Node ``others`` key holding the FullTopic pattern the device was seen to use."""

MAX_ID_LENGTH: Final = 128
_NOT_ID_CHAR: Final = re.compile(r"[^A-Za-z0-9_\-:@~]")
_POWER_KEY: Final = re.compile(r"^POWER\d*\Z", re.IGNORECASE)
_MQTT_FORBIDDEN: Final = frozenset("+#/\x00")


class TopicError(ProtocolError, ValueError):
    """A topic that is not a Tasmota topic."""


class TasmotaTopic(NamedTuple):
    """One received topic, read: which prefix, which device, which command, and the FullTopic it implies."""

    prefix: str
    """``tele``, ``stat`` or ``cmnd``."""
    device: str
    """The device's ``%topic%`` as published (may hold characters node ids do not allow)."""
    node_id: str
    """``device`` in the id charset: what the node is stored as."""
    command: str
    """Last segment, upper-cased (Tasmota's own topics are upper case: ``STATE``, ``RESULT``, ``STATUS11``…)."""
    full_topic: str
    """The FullTopic pattern this topic implies, e.g. ``%prefix%/%topic%/`` or ``home/%prefix%/%topic%/``."""


@lru_cache(maxsize=8192)
def sanitize_id(text: str) -> str:
    """An id segment from device text: disallowed characters (dots, spaces, slashes…) become '_', at most 128.

    Returns '' for empty text; callers decide whether that is an error.
    """
    if ID_PATTERN.match(text):
        return text
    return _NOT_ID_CHAR.sub("_", text)[:MAX_ID_LENGTH]


def _pattern(parts: list[str], prefix_at: int, topic_at: int) -> str:
    names = list(parts[:-1])
    names[prefix_at] = "%prefix%"
    names[topic_at] = "%topic%"
    return "/".join(names) + "/"


@lru_cache(maxsize=16384)
def parse_topic(topic: str) -> TasmotaTopic:
    """Read a received topic; ``TopicError`` says why it is not one of Tasmota's.

    Layouts, tried in this order: ``[lead/…]<prefix>/<device>/<command>`` (the default, with or without extra
    leading levels), ``[lead/…]<device>/<prefix>/<command>`` (``%topic%/%prefix%/``), and
    ``…/<prefix>/<levels…>/<device>/<command>`` (a FullTopic with fixed levels between prefix and topic).
    """
    parts = [part for part in topic.split("/") if part]
    if len(parts) < 3:
        raise TopicError(f"Tasmota topic {topic!r} needs at least <prefix>/<device>/<command>")
    count = len(parts)
    if parts[-3] in PREFIXES:
        prefix_at, device_at = count - 3, count - 2
    elif parts[-2] in PREFIXES:
        prefix_at, device_at = count - 2, count - 3
    else:
        for prefix_at in range(count - 4, -1, -1):
            if parts[prefix_at] in PREFIXES:
                device_at = count - 2
                break
        else:
            raise TopicError(f"Tasmota topic {topic!r} has no tele, stat or cmnd level")
    device = parts[device_at]
    node_id = sanitize_id(device)
    if not node_id:
        raise TopicError(f"Tasmota topic {topic!r} has an empty device name")
    return TasmotaTopic(parts[prefix_at], device, node_id, parts[-1].upper(), _pattern(parts, prefix_at, device_at))


def decode_json(raw: str, topic: str) -> Any:
    """The payload as JSON; ``ValueError`` naming the topic when it is not."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"Tasmota {topic}: payload is not JSON ({error}): {raw[:80]!r}") from None


def decode_object(raw: str, topic: str) -> dict[str, Any]:
    """The payload as a JSON object (all of Tasmota's JSON messages are objects)."""
    data = decode_json(raw, topic)
    if not isinstance(data, dict):
        raise ValueError(f"Tasmota {topic}: payload must be a JSON object, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------------------------- commands


def _topic_segment(text: str, what: str) -> str:
    if not text or any(c in _MQTT_FORBIDDEN or c.isspace() for c in text):
        raise ValueError(f"Tasmota {what} {text!r} cannot be part of an MQTT topic")
    return text


def command_topic(node_id: str, command: str, full_topic: str = DEFAULT_FULL_TOPIC) -> str:
    """The topic a command goes to: ``cmnd/<device>/<command>`` on the default FullTopic.

    ``full_topic`` is the device's FullTopic pattern (``%prefix%`` and ``%topic%`` placeholders), as
    ``parse_topic`` reports it and nodes keep it in ``others.tasmota_full_topic``. ``node_id`` is the device's
    own topic name (see ``device_topic``). ``ValueError`` when the result would not be a publishable topic.
    """
    device = _topic_segment(node_id, "device")
    name = _topic_segment(command, "command")
    if "%prefix%" not in full_topic or "%topic%" not in full_topic:
        raise ValueError(f"Tasmota FullTopic {full_topic!r} must hold %prefix% and %topic%")
    base = full_topic.replace("%prefix%", "cmnd").replace("%topic%", device)
    if "%" in base:
        raise ValueError(f"Tasmota FullTopic {full_topic!r} has placeholders other than %prefix% and %topic%")
    if any(c in "+#\x00" for c in base):
        raise ValueError(f"Tasmota FullTopic {full_topic!r} cannot be published to")
    return base.rstrip("/") + "/" + name


def device_topic(node: dict[str, Any]) -> str:
    """The device's own ``%topic%`` for a node record: kept in ``others`` when the id had to be sanitized."""
    others = node.get("others") or {}
    original = others.get(TOPIC_KEY)
    return original if isinstance(original, str) and original else str(node.get("nodeId", ""))


def node_command_topic(node: dict[str, Any], command: str, gateway: dict[str, Any] | None = None) -> str:
    """The command topic for a node record, honouring what the device was seen to use.

    FullTopic: the node's ``others.tasmota_full_topic``, else the gateway's ``provider.topicPrefix`` (the edge
    config's extra leading level) in front of the default, else the default.
    """
    others = node.get("others") or {}
    full_topic = others.get(FULL_TOPIC_KEY)
    if not isinstance(full_topic, str) or not full_topic:
        provider = (gateway or {}).get("provider") or {}
        lead = str(provider.get("topicPrefix") or "").strip("/") if isinstance(provider, dict) else ""
        full_topic = f"{lead}/{DEFAULT_FULL_TOPIC}" if lead else DEFAULT_FULL_TOPIC
    return command_topic(device_topic(node), command, full_topic)


def command_payload(field_id: str, value: Any, metric_type: str) -> str:
    """The payload that sets a field: binary as ON/OFF, numbers as plain text, ``toggle`` as TOGGLE.

    ``None`` gives an empty payload, which makes Tasmota report the current state. POWER fields are ON/OFF
    whatever their stored metric type. ``ValueError`` when a binary value is not one.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.strip().lower() == "toggle":
        return "TOGGLE"
    if metric_type == "binary" or _POWER_KEY.match(field_id):
        try:
            return "ON" if to_binary(value) else "OFF"
        except ConversionError as error:
            raise ValueError(f"Tasmota {field_id}: {error}") from None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"Tasmota {field_id}: not a finite number: {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list | tuple):
        return ",".join(command_payload(field_id, item, "gauge_float") for item in value)
    return str(value)
