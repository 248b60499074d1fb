"""Provider ``esphome``: ESPHome devices over their native API, connected at the edge and decoded here.

``mycontroller_protocol.esphome.codec`` holds the messages' shape and the values of commands; ``interpreter`` maps
devices, entities and states to nodes, sources and fields, after MyController v2's ESPHome provider.
"""

from __future__ import annotations

from mycontroller_protocol.esphome.codec import (
    NODE_ACTIONS,
    PROVIDER,
    EspHomeCommandError,
    command_raw,
    command_value,
    hex_rgb,
    node_action_raw,
    parse_rgb,
    read_downlink,
)

from .interpreter import KIND_LABEL, EspHomeInterpreter

__all__ = [
    "KIND_LABEL",
    "NODE_ACTIONS",
    "PROVIDER",
    "EspHomeCommandError",
    "EspHomeInterpreter",
    "command_raw",
    "command_value",
    "hex_rgb",
    "node_action_raw",
    "parse_rgb",
    "read_downlink",
]
