"""Provider ``tasmota``: Tasmota devices over MQTT, decoded in the cloud from the topic and payload the edge saw.

``mycontroller_protocol.tasmota.codec`` reads topics and builds command topics and payloads; ``interpreter`` maps
telemetry, results, status and LWT to processor operations, after MyController v2's Tasmota provider.
"""

from __future__ import annotations

from mycontroller_protocol.tasmota.codec import (
    DEFAULT_FULL_TOPIC,
    FULL_TOPIC_KEY,
    TOPIC_KEY,
    TasmotaTopic,
    TopicError,
    command_payload,
    command_topic,
    device_topic,
    node_command_topic,
    parse_topic,
    sanitize_id,
)

from .interpreter import PROVIDER, TasmotaInterpreter

__all__ = [
    "DEFAULT_FULL_TOPIC",
    "FULL_TOPIC_KEY",
    "PROVIDER",
    "TOPIC_KEY",
    "TasmotaInterpreter",
    "TasmotaTopic",
    "TopicError",
    "command_payload",
    "command_topic",
    "device_topic",
    "node_command_topic",
    "parse_topic",
    "sanitize_id",
]
