"""ESPHome's messages as they travel between the edge and the cloud, and the values of its commands.

The edge holds the native-API connection (``aioesphomeapi``: protobuf frames over TCP, Noise-encrypted or
not) and turns what a device says into small JSON objects, one an envelope, in ESPHome's own terms; the cloud
decides what they mean (``interpreter.py``). Keys are short because AWS IoT bills per 5 KB:

* ``{"t": "device", "n": <node>, "name", "fn" (friendly name), "mac", "model", "mf" (manufacturer), "ver"
  (ESPHome version), "built", "proj", "pver", "addr", "web" (web server port), "sleep" (deep sleep)}`` — the
  device answered ``DeviceInfoRequest``;
* ``{"t": "entity", "n", "s" (source id), "k" (entity kind: sensor, light…), "name", "dc" (device class),
  "u" (unit), "sc" (state class), "ec" (entity category), "min", "max", "step", "opts", "modes", "fx"}`` — one
  ``ListEntities…Response``;
* ``{"t": "state", "n", "s", "k", "v", "u"}`` — a state: ``v`` a scalar, or an object for lights, covers, fans
  and climates (only the parts the entity supports);
* ``{"t": "offline", "n", "m"}`` — the connection to the device was lost.

Commands go down as ``{"n", "s", "f", "v"}`` with ``v`` already in ESPHome's units (brightness and positions
0..1, colours as three 0..1 channels, colour temperature in mireds); the edge finds the entity (its key) by node
and source and calls the matching ``aioesphomeapi`` command. Node actions go down as ``{"n", "a"}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from ..errors import ProtocolError
from ..json_downlink import JsonDownlinks
from ..values import ConversionError, convert_value, to_binary

PROVIDER: Final = "esphome"

STATE: Final = "state"
PRESS: Final = "press"
BRIGHTNESS: Final = "brightness"
WHITE: Final = "white"
RGB: Final = "rgb"
COLOR_TEMPERATURE: Final = "color_temperature"
EFFECT: Final = "effect"
POSITION: Final = "position"
TILT: Final = "tilt"
CURRENT_OPERATION: Final = "current_operation"
SPEED_LEVEL: Final = "speed_level"
OSCILLATING: Final = "oscillating"
DIRECTION: Final = "direction"
PRESET_MODE: Final = "preset_mode"
MODE: Final = "mode"
ACTION: Final = "action"
CURRENT_TEMPERATURE: Final = "current_temperature"
TARGET_TEMPERATURE: Final = "target_temperature"
TARGET_TEMPERATURE_LOW: Final = "target_temperature_low"
TARGET_TEMPERATURE_HIGH: Final = "target_temperature_high"
EVENT_TYPE: Final = "event_type"

PERCENT_FIELDS: Final = frozenset({BRIGHTNESS, WHITE, POSITION, TILT})
"""Fields the cloud shows in percent and ESPHome takes as 0..1."""
TEMPERATURE_FIELDS: Final = frozenset({TARGET_TEMPERATURE, TARGET_TEMPERATURE_LOW, TARGET_TEMPERATURE_HIGH})

COVER_COMMANDS: Final = frozenset({"open", "close", "stop", "toggle"})
LOCK_COMMANDS: Final = frozenset({"lock", "unlock", "open"})
FAN_DIRECTIONS: Final = frozenset({"forward", "reverse"})
CLIMATE_MODES: Final = ("off", "heat_cool", "cool", "heat", "fan_only", "dry", "auto")
"""ESPHome's ``ClimateMode`` values by their number, lower-cased."""

NODE_ACTIONS: Final = ("heartbeat_request", "reboot", "refresh_node_info")
"""ESPHome node actions: ``reboot`` presses the device's restart button (a ``button`` entity with device class
``restart``), when it has one; a device has no way to erase its settings over the API, so no ``reset``."""

_HEX: Final = re.compile(r"^#?([0-9a-fA-F]{6})\Z")


class EspHomeCommandError(ProtocolError, ValueError):
    """A value an ESPHome entity cannot take; the message names the field and the value."""


def percent_to_fraction(value: Any, field: str) -> float:
    """0..100 (the console's percent) → 0..1 (ESPHome's brightness, position, tilt)."""
    number = _number(value, field)
    if not 0.0 <= number <= 100.0:
        raise EspHomeCommandError(f"{field} must be 0-100 (percent), got {value!r}")
    return round(number / 100.0, 4)


def parse_rgb(value: Any) -> tuple[float, float, float]:
    """``#rrggbb``, ``rrggbb`` or ``r,g,b`` (0-255 each) → three channels 0..1, as ESPHome's light call takes."""
    text = str(value).strip()
    match = _HEX.match(text)
    if match is not None:
        digits = match.group(1)
        channels = [int(digits[i:i + 2], 16) for i in (0, 2, 4)]
    else:
        parts = [part.strip() for part in text.split(",")]
        try:
            channels = [int(part) for part in parts]
        except ValueError:
            channels = []
        if len(channels) != 3 or not all(0 <= c <= 255 for c in channels):
            raise EspHomeCommandError(f"rgb must be '#rrggbb' or 'r,g,b' (0-255 each), got {value!r}")
    return (round(channels[0] / 255, 4), round(channels[1] / 255, 4), round(channels[2] / 255, 4))


def hex_rgb(red: float, green: float, blue: float) -> str:
    """ESPHome's three 0..1 channels → ``#rrggbb``."""
    def byte(channel: float) -> int:
        return max(0, min(255, round(float(channel) * 255)))

    return f"#{byte(red):02x}{byte(green):02x}{byte(blue):02x}"


def _number(value: Any, field: str) -> float:
    try:
        number = float(convert_value(value, "gauge_float"))
    except ConversionError:
        raise EspHomeCommandError(f"{field} must be a number, got {value!r}") from None
    return number


def _text(value: Any, field: str, allowed: frozenset[str] | tuple[str, ...] | None = None) -> str:
    text = str(value).strip()
    if not text:
        raise EspHomeCommandError(f"{field} must not be empty")
    if allowed is not None:
        text = text.lower()
        if text not in allowed:
            raise EspHomeCommandError(f"{field} must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return text


def _rgb(value: Any, field: str) -> list[float]:
    return list(parse_rgb(value))


def _mireds(value: Any, field: str) -> float:
    mireds = _number(value, field)
    if not 0 < mireds <= 1000:
        raise EspHomeCommandError(f"color_temperature must be in mireds (1-1000), got {value!r}")
    return mireds


def _press(value: Any, field: str) -> bool:
    return True


def _on_off(value: Any, field: str) -> bool:
    try:
        return to_binary(value)
    except ConversionError:
        raise EspHomeCommandError(f"{field} must be on or off, got {value!r}") from None


def _speed_level(value: Any, field: str) -> int:
    level = _number(value, field)
    if not level.is_integer() or level < 0:
        raise EspHomeCommandError(f"speed_level must be a whole number from 0, got {value!r}")
    return int(level)


def _fan_direction(value: Any, field: str) -> str:
    return _text(value, field, FAN_DIRECTIONS)


def _climate_mode(value: Any, field: str) -> str:
    return _text(value, field, CLIMATE_MODES)


def _state(value: Any, metric_type: str) -> Any:
    """``state`` by the field's metric type: on/off, a number, else text (a select's option, a text, a lock or
    cover command: the edge knows which)."""
    if metric_type == "binary":
        return _on_off(value, STATE)
    if metric_type in ("gauge_float", "gauge", "counter"):
        return _number(value, STATE)
    return str(value)


_COMMAND_VALUES: Final[dict[str, Callable[[Any, str], Any]]] = {
    **dict.fromkeys(PERCENT_FIELDS, percent_to_fraction), RGB: _rgb, COLOR_TEMPERATURE: _mireds, PRESS: _press,
    OSCILLATING: _on_off, SPEED_LEVEL: _speed_level, DIRECTION: _fan_direction, MODE: _climate_mode,
    **dict.fromkeys(TEMPERATURE_FIELDS, _number), EFFECT: _text, PRESET_MODE: _text}
"""Per field that takes commands (``state`` aside: it goes by the metric type), its value checked and converted."""


def command_value(field: str, metric_type: str, value: Any) -> Any:
    """A field's new value (already converted to its metric type by the action layer) in ESPHome's terms.

    Which entity takes it is known at the edge only; here the value is checked and converted by what the field
    is, so that a bad value is refused by the API instead of failing quietly at the edge.
    """
    if field == STATE:
        return _state(value, metric_type)
    convert = _COMMAND_VALUES.get(field)
    if convert is None:
        raise EspHomeCommandError(f"field {field!r} of an ESPHome entity takes no commands")
    return convert(value, field)


_DOWNLINKS: Final = JsonDownlinks("ESPHome", NODE_ACTIONS, EspHomeCommandError)


def command_raw(node: str, source: str, field: str, value: Any) -> str:
    """The downlink that sets one field of one entity."""
    return _DOWNLINKS.command_raw(node, source, field, value)


def node_action_raw(node: str, action: str) -> str:
    """The downlink of a node action (``NODE_ACTIONS``)."""
    return _DOWNLINKS.node_action_raw(node, action, "ESPHome devices")


def read_downlink(raw: str) -> dict[str, Any]:
    """A downlink as the edge reads it: ``{"n", "s", "f", "v"}`` or ``{"n", "a"}``; ``EspHomeCommandError`` else."""
    return _DOWNLINKS.read(raw)
