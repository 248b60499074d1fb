"""Philips Hue (CLIP v2) messages between the edge and the cloud, colour conversions, and command values.

The edge holds the bridge connection (``aiohue``: the v2 REST API and its server-sent event stream) and sends
each resource it learns of, or that changes, as ``{"n": <node>, "s": <source>, "r": <resource>}``: ``r`` is the
bridge's own v2 JSON for that resource, cut down to the parts the interpreter reads (ids, owner, metadata,
``on``, ``dimming``, ``color_temperature``, ``color.xy``, ``motion``, ``temperature``, ``light``, ``button``,
``power_state``, ``status``…), ``n`` the node it belongs to (the owning device, room or zone: their v2 ids) and
``s`` its source id there (``light``, ``grouped_light``, ``motion``, ``temperature``, ``light_level``,
``button_<control id>``; a second service of one type on a device gets ``_2``…). Device, room and zone
resources themselves carry no ``s``: they describe their node.

Commands go down as ``{"n", "s", "f", "v"}``, ``v`` in the bridge's terms (``on`` a boolean, ``brightness``
0-100, ``color_temperature`` in mirek, ``color`` a CIE ``{"x", "y"}``); the edge finds the light or grouped
light behind node and source and sends it with ``aiohue``. Node actions go down as ``{"n", "a"}``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..errors import ProtocolError
from ..json_downlink import JsonDownlinks
from ..values import ConversionError, convert_value, to_binary

PROVIDER: Final = "philips_hue"

ON: Final = "on"
BRIGHTNESS: Final = "brightness"
COLOR_TEMPERATURE: Final = "color_temperature"
COLOR: Final = "color"
MOTION: Final = "motion"
TEMPERATURE: Final = "temperature"
LIGHT_LEVEL: Final = "light_level"
EVENT: Final = "event"

MIREK_MIN: Final = 153
MIREK_MAX: Final = 500
"""The v2 API's range for ``color_temperature.mirek`` (6500 K to 2000 K)."""

NODE_ACTIONS: Final = ("refresh_node_info",)
"""Hue node actions: send what the bridge knows of the node again. A bridge cannot reboot or reset a lamp."""

_HEX: Final = re.compile(r"^#?([0-9a-fA-F]{6})\Z")
_D65: Final = (0.3127, 0.3290)
"""The white point: what black (no colour at all) is sent as."""


class HueCommandError(ProtocolError, ValueError):
    """A value a Hue light cannot take; the message names the field and the value."""


# --------------------------------------------------------------------------------------------- colour


def _linear(channel: float) -> float:
    return ((channel + 0.055) / 1.055) ** 2.4 if channel > 0.04045 else channel / 12.92


def _gamma(channel: float) -> float:
    return 12.92 * channel if channel <= 0.0031308 else 1.055 * channel ** (1 / 2.4) - 0.055


def rgb_to_xy(red: int, green: int, blue: int) -> tuple[float, float]:
    """sRGB (0-255 each) → CIE 1931 ``(x, y)``, as the Hue API takes colours (the bridge fits it to the lamp's
    gamut). Brightness is not part of it: ``#200000`` and ``#ff0000`` are the same red."""
    r, g, b = (_linear(c / 255) for c in (red, green, blue))
    big_x = r * 0.4124 + g * 0.3576 + b * 0.1805
    big_y = r * 0.2126 + g * 0.7152 + b * 0.0722
    big_z = r * 0.0193 + g * 0.1192 + b * 0.9505
    total = big_x + big_y + big_z
    if total <= 0:
        return _D65
    return round(big_x / total, 4), round(big_y / total, 4)


def xy_to_hex(x: float, y: float) -> str:
    """CIE ``(x, y)`` → ``#rrggbb`` at full brightness (the colour the console shows)."""
    if y <= 0:
        return "#000000"
    big_y = 1.0
    big_x = x * big_y / y
    big_z = (1.0 - x - y) * big_y / y
    linear = (big_x * 3.2406 - big_y * 1.5372 - big_z * 0.4986,
              -big_x * 0.9689 + big_y * 1.8758 + big_z * 0.0415,
              big_x * 0.0557 - big_y * 0.2040 + big_z * 1.0570)
    clipped = [max(0.0, c) for c in linear]
    top = max(clipped)
    if top > 1.0:
        clipped = [c / top for c in clipped]
    channels = [max(0, min(255, round(_gamma(c) * 255))) for c in clipped]
    return "#{:02x}{:02x}{:02x}".format(*channels)


def parse_color(value: Any) -> tuple[float, float]:
    """``#rrggbb``, ``r,g,b`` (0-255) or ``x,y`` (CIE, 0-1) → ``(x, y)``."""
    text = str(value).strip()
    match = _HEX.match(text)
    if match is not None:
        digits = match.group(1)
        return rgb_to_xy(int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) == 3:
            channels = [int(part) for part in parts]
            if all(0 <= c <= 255 for c in channels):
                return rgb_to_xy(*channels)
        elif len(parts) == 2:
            x, y = float(parts[0]), float(parts[1])
            if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
                return round(x, 4), round(y, 4)
    except ValueError:
        pass
    raise HueCommandError(f"color must be '#rrggbb', 'r,g,b' (0-255) or 'x,y' (CIE, 0-1), got {value!r}")


def lux(light_level: float) -> float:
    """The v2 ``light_level`` (10000·log10(lux) + 1) → lux, one decimal."""
    return round(10 ** ((float(light_level) - 1) / 10000), 1)


# --------------------------------------------------------------------------------------------- commands


def _number(value: Any, field: str) -> float:
    try:
        return float(convert_value(value, "gauge_float"))
    except ConversionError:
        raise HueCommandError(f"{field} must be a number, got {value!r}") from None


def command_value(field: str, value: Any) -> Any:
    """A field's new value in the bridge's terms; ``HueCommandError`` when the light cannot take it."""
    if field == ON:
        try:
            return to_binary(value)
        except ConversionError:
            raise HueCommandError(f"on must be on or off, got {value!r}") from None
    if field == BRIGHTNESS:
        level = _number(value, field)
        if not 0.0 <= level <= 100.0:
            raise HueCommandError(f"brightness must be 0-100 (percent), got {value!r}")
        return round(level, 2)
    if field == COLOR_TEMPERATURE:
        mirek = _number(value, field)
        if not MIREK_MIN <= mirek <= MIREK_MAX:
            raise HueCommandError(f"color_temperature must be {MIREK_MIN}-{MIREK_MAX} mirek, got {value!r}")
        return round(mirek)
    if field == COLOR:
        x, y = parse_color(value)
        return {"x": x, "y": y}
    raise HueCommandError(f"field {field!r} of a Hue resource takes no commands (on, brightness, "
                          "color_temperature and color of lights and groups do)")


_DOWNLINKS: Final = JsonDownlinks(
    "Hue", NODE_ACTIONS, HueCommandError, settable=lambda field: field in (ON, BRIGHTNESS, COLOR_TEMPERATURE, COLOR),
    settable_words="a settable 'f'")


def command_raw(node: str, source: str, field: str, value: Any) -> str:
    """The downlink that sets one field of one entity."""
    return _DOWNLINKS.command_raw(node, source, field, value)


def node_action_raw(node: str, action: str) -> str:
    """The downlink of a node action (``NODE_ACTIONS``)."""
    return _DOWNLINKS.node_action_raw(node, action, "Hue nodes")


def read_downlink(raw: str) -> dict[str, Any]:
    """A downlink as the edge reads it: ``{"n", "s", "f", "v"}`` or ``{"n", "a"}``; ``HueCommandError`` else."""
    return _DOWNLINKS.read(raw)
