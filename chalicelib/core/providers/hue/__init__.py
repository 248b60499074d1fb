"""Provider ``philips_hue``: Philips Hue bridges over CLIP v2, connected at the edge and decoded here.

``mycontroller_protocol.hue.codec`` holds the messages' shape, colour conversions and command values;
``interpreter`` maps devices, rooms, zones and their services to nodes, sources and fields, after MyController v2's
Hue provider.
"""

from __future__ import annotations

from mycontroller_protocol.hue.codec import (
    NODE_ACTIONS,
    PROVIDER,
    HueCommandError,
    command_raw,
    command_value,
    lux,
    node_action_raw,
    parse_color,
    read_downlink,
    rgb_to_xy,
    xy_to_hex,
)

from .interpreter import TYPE_LABEL, HueInterpreter

__all__ = [
    "NODE_ACTIONS",
    "PROVIDER",
    "TYPE_LABEL",
    "HueCommandError",
    "HueInterpreter",
    "command_raw",
    "command_value",
    "lux",
    "node_action_raw",
    "parse_color",
    "read_downlink",
    "rgb_to_xy",
    "xy_to_hex",
]
