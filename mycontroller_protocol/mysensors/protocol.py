"""MySensors serial protocol 2.x: commands and the S_, V_, I_ and ST_ types, with default metric types and units.

Numbering as in MySensors 2.3's ``MyMessage.h``. Unknown value types map to ``V_CUSTOM``, as the reference does.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

BROADCAST: Final = 255
GATEWAY_NODE: Final = 0
INTERNAL_CHILD: Final = 255


class Command(IntEnum):
    """The command field: what kind of message this is (decides which enum the type field belongs to)."""

    PRESENTATION = 0
    SET = 1
    REQ = 2
    INTERNAL = 3
    STREAM = 4


class Sensor(IntEnum):
    """S_ types, carried by presentation messages: what kind of device a child sensor is."""

    S_DOOR = 0
    S_MOTION = 1
    S_SMOKE = 2
    S_BINARY = 3
    S_DIMMER = 4
    S_COVER = 5
    S_TEMP = 6
    S_HUM = 7
    S_BARO = 8
    S_WIND = 9
    S_RAIN = 10
    S_UV = 11
    S_WEIGHT = 12
    S_POWER = 13
    S_HEATER = 14
    S_DISTANCE = 15
    S_LIGHT_LEVEL = 16
    S_ARDUINO_NODE = 17
    S_ARDUINO_REPEATER_NODE = 18
    S_LOCK = 19
    S_IR = 20
    S_WATER = 21
    S_AIR_QUALITY = 22
    S_CUSTOM = 23
    S_DUST = 24
    S_SCENE_CONTROLLER = 25
    S_RGB_LIGHT = 26
    S_RGBW_LIGHT = 27
    S_COLOR_SENSOR = 28
    S_HVAC = 29
    S_MULTIMETER = 30
    S_SPRINKLER = 31
    S_WATER_LEAK = 32
    S_SOUND = 33
    S_VIBRATION = 34
    S_MOISTURE = 35
    S_INFO = 36
    S_GAS = 37
    S_GPS = 38
    S_WATER_QUALITY = 39


class Value(IntEnum):
    """V_ types, carried by set and req messages: which quantity the payload is (the field id)."""

    V_TEMP = 0
    V_HUM = 1
    V_STATUS = 2
    V_PERCENTAGE = 3
    V_PRESSURE = 4
    V_FORECAST = 5
    V_RAIN = 6
    V_RAINRATE = 7
    V_WIND = 8
    V_GUST = 9
    V_DIRECTION = 10
    V_UV = 11
    V_WEIGHT = 12
    V_DISTANCE = 13
    V_IMPEDANCE = 14
    V_ARMED = 15
    V_TRIPPED = 16
    V_WATT = 17
    V_KWH = 18
    V_SCENE_ON = 19
    V_SCENE_OFF = 20
    V_HVAC_FLOW_STATE = 21
    V_HVAC_SPEED = 22
    V_LIGHT_LEVEL = 23
    V_VAR1 = 24
    V_VAR2 = 25
    V_VAR3 = 26
    V_VAR4 = 27
    V_VAR5 = 28
    V_UP = 29
    V_DOWN = 30
    V_STOP = 31
    V_IR_SEND = 32
    V_IR_RECEIVE = 33
    V_FLOW = 34
    V_VOLUME = 35
    V_LOCK_STATUS = 36
    V_LEVEL = 37
    V_VOLTAGE = 38
    V_CURRENT = 39
    V_RGB = 40
    V_RGBW = 41
    V_ID = 42
    V_UNIT_PREFIX = 43
    V_HVAC_SETPOINT_COOL = 44
    V_HVAC_SETPOINT_HEAT = 45
    V_HVAC_FLOW_MODE = 46
    V_TEXT = 47
    V_CUSTOM = 48
    V_POSITION = 49
    V_IR_RECORD = 50
    V_PH = 51
    V_ORP = 52
    V_EC = 53
    V_VAR = 54
    V_VA = 55
    V_POWER_FACTOR = 56


VALUE_ALIASES: Final[dict[str, Value]] = {
    "V_LIGHT": Value.V_STATUS,
    "V_DIMMER": Value.V_PERCENTAGE,
    "V_HEATER": Value.V_HVAC_FLOW_STATE,
}
"""Deprecated names ``MyMessage.h`` still defines: old sketches and controller configs use them."""
SENSOR_ALIASES: Final[dict[str, Sensor]] = {"S_LIGHT": Sensor.S_BINARY}


class Internal(IntEnum):
    """I_ types, carried by internal messages: the library's own traffic (ids, time, battery, heartbeat...)."""

    I_BATTERY_LEVEL = 0
    I_TIME = 1
    I_VERSION = 2
    I_ID_REQUEST = 3
    I_ID_RESPONSE = 4
    I_INCLUSION_MODE = 5
    I_CONFIG = 6
    I_FIND_PARENT_REQUEST = 7
    I_FIND_PARENT_RESPONSE = 8
    I_LOG_MESSAGE = 9
    I_CHILDREN = 10
    I_SKETCH_NAME = 11
    I_SKETCH_VERSION = 12
    I_REBOOT = 13
    I_GATEWAY_READY = 14
    I_SIGNING_PRESENTATION = 15
    I_NONCE_REQUEST = 16
    I_NONCE_RESPONSE = 17
    I_HEARTBEAT_REQUEST = 18
    I_PRESENTATION = 19
    I_DISCOVER_REQUEST = 20
    I_DISCOVER_RESPONSE = 21
    I_HEARTBEAT_RESPONSE = 22
    I_LOCKED = 23
    I_PING = 24
    I_PONG = 25
    I_REGISTRATION_REQUEST = 26
    I_REGISTRATION_RESPONSE = 27
    I_DEBUG = 28
    I_SIGNAL_REPORT_REQUEST = 29
    I_SIGNAL_REPORT_REVERSE = 30
    I_SIGNAL_REPORT_RESPONSE = 31
    I_PRE_SLEEP_NOTIFICATION = 32
    I_POST_SLEEP_NOTIFICATION = 33


class Stream(IntEnum):
    """ST_ types, carried by stream messages: firmware over the air (and, unused in practice, sound and image)."""

    ST_FIRMWARE_CONFIG_REQUEST = 0
    ST_FIRMWARE_CONFIG_RESPONSE = 1
    ST_FIRMWARE_REQUEST = 2
    ST_FIRMWARE_RESPONSE = 3
    ST_SOUND = 4
    ST_IMAGE = 5


_G, _F, _B, _S, _C, _GEO = "gauge", "gauge_float", "binary", "string", "counter", "geo"

VALUE_METRIC: Final[dict[int, tuple[str, str]]] = {
    Value.V_TEMP: (_F, "°C"),
    Value.V_HUM: (_F, "%"),
    Value.V_STATUS: (_B, ""),
    Value.V_PERCENTAGE: (_G, "%"),
    Value.V_PRESSURE: (_F, "hPa"),
    Value.V_FORECAST: (_S, ""),  # "stable", "sunny", "cloudy", "unstable", "thunderstorm", "unknown"
    Value.V_RAIN: (_F, "mm"),
    Value.V_RAINRATE: (_F, "mm/h"),
    Value.V_WIND: (_F, "m/s"),
    Value.V_GUST: (_F, "m/s"),
    Value.V_DIRECTION: (_G, "°"),
    Value.V_UV: (_F, "UVI"),
    Value.V_WEIGHT: (_F, "kg"),
    Value.V_DISTANCE: (_F, "cm"),
    Value.V_IMPEDANCE: (_F, "Ω"),
    Value.V_ARMED: (_B, ""),
    Value.V_TRIPPED: (_B, ""),
    Value.V_WATT: (_F, "W"),
    Value.V_KWH: (_F, "kWh"),
    Value.V_SCENE_ON: (_S, ""),  # the payload is a scene number or name
    Value.V_SCENE_OFF: (_S, ""),
    Value.V_HVAC_FLOW_STATE: (_S, ""),  # "Off", "HeatOn", "CoolOn", "AutoChangeOver"
    Value.V_HVAC_SPEED: (_S, ""),  # "Min", "Normal", "Max", "Auto"
    Value.V_LIGHT_LEVEL: (_F, "%"),
    Value.V_VAR1: (_S, ""),
    Value.V_VAR2: (_S, ""),
    Value.V_VAR3: (_S, ""),
    Value.V_VAR4: (_S, ""),
    Value.V_VAR5: (_S, ""),
    Value.V_UP: (_B, ""),
    Value.V_DOWN: (_B, ""),
    Value.V_STOP: (_B, ""),
    Value.V_IR_SEND: (_S, ""),
    Value.V_IR_RECEIVE: (_S, ""),
    Value.V_FLOW: (_F, "l/min"),
    Value.V_VOLUME: (_C, "m³"),  # the water and gas meter sketches count in m³, and it only grows
    Value.V_LOCK_STATUS: (_B, ""),
    Value.V_LEVEL: (_F, ""),  # lux, dB, Hz, ppm or µg/m³ depending on the sensor: no single unit
    Value.V_VOLTAGE: (_F, "V"),
    Value.V_CURRENT: (_F, "A"),
    Value.V_RGB: (_S, ""),
    Value.V_RGBW: (_S, ""),
    Value.V_ID: (_S, ""),
    Value.V_UNIT_PREFIX: (_S, ""),
    Value.V_HVAC_SETPOINT_COOL: (_F, "°C"),
    Value.V_HVAC_SETPOINT_HEAT: (_F, "°C"),
    Value.V_HVAC_FLOW_MODE: (_S, ""),  # "Auto", "ContinuousOn", "PeriodicOn"
    Value.V_TEXT: (_S, ""),
    Value.V_CUSTOM: (_S, ""),
    Value.V_POSITION: (_GEO, ""),  # "latitude;longitude;altitude"
    Value.V_IR_RECORD: (_S, ""),
    Value.V_PH: (_F, "pH"),
    Value.V_ORP: (_F, "mV"),
    Value.V_EC: (_F, "µS/cm"),
    Value.V_VAR: (_F, "var"),
    Value.V_VA: (_F, "VA"),
    Value.V_POWER_FACTOR: (_F, ""),
}
"""Default metric type and unit of every V_ type (the field takes them unless labelled ``ignore_*``).

After MyController v2's table, except where its choice cannot hold the payload: words (V_FORECAST, the HVAC
states and modes) are strings, not gauges; V_POSITION is geo; text-like types are strings.
"""

_VALUE_BY_NAME: Final[dict[str, int]] = {v.name: int(v) for v in Value} | {k: int(v) for k, v in VALUE_ALIASES.items()}
_SENSOR_BY_NAME: Final[dict[str, int]] = ({s.name: int(s) for s in Sensor}
                                          | {k: int(v) for k, v in SENSOR_ALIASES.items()})
_INTERNAL_BY_NAME: Final[dict[str, int]] = {i.name: int(i) for i in Internal}
_STREAM_BY_NAME: Final[dict[str, int]] = {s.name: int(s) for s in Stream}
_VALUE_NAMES: Final[dict[int, str]] = {int(v): v.name for v in Value}
_SENSOR_NAMES: Final[dict[int, str]] = {int(s): s.name for s in Sensor}
_INTERNAL_NAMES: Final[dict[int, str]] = {int(i): i.name for i in Internal}
_STREAM_NAMES: Final[dict[int, str]] = {int(s): s.name for s in Stream}


def value_name(type_id: int) -> str:
    """The V_ name; unknown ids become ``V_CUSTOM``, as the reference does, so a field id is always a V_ name."""
    return _VALUE_NAMES.get(type_id, "V_CUSTOM")


def sensor_name(type_id: int) -> str:
    """The S_ name; unknown ids give ``S_UNKNOWN_<id>`` so that a label still says what was presented."""
    return _SENSOR_NAMES.get(type_id) or f"S_UNKNOWN_{type_id}"


def internal_name(type_id: int) -> str:
    """The I_ name; unknown ids give ``I_UNKNOWN_<id>`` (for logs: the decoder rejects them)."""
    return _INTERNAL_NAMES.get(type_id) or f"I_UNKNOWN_{type_id}"


def stream_name(type_id: int) -> str:
    """The ST_ name; unknown ids give ``ST_UNKNOWN_<id>`` (for logs: the decoder rejects them)."""
    return _STREAM_NAMES.get(type_id) or f"ST_UNKNOWN_{type_id}"


def _lookup(table: dict[str, int], name: str, what: str) -> int:
    key = name.strip().upper() if isinstance(name, str) else None
    if key is not None and key in table:
        return table[key]
    raise KeyError(f"unknown MySensors {what} type {name!r}")


def value_id(name: str) -> int:
    """The id of a V_ name (aliases such as V_LIGHT accepted, any case); ``KeyError`` when unknown."""
    return _lookup(_VALUE_BY_NAME, name, "value")


def sensor_id(name: str) -> int:
    """The id of an S_ name (S_LIGHT accepted, any case); ``KeyError`` when unknown."""
    return _lookup(_SENSOR_BY_NAME, name, "sensor")


def internal_id(name: str) -> int:
    """The id of an I_ name (any case); ``KeyError`` when unknown."""
    return _lookup(_INTERNAL_BY_NAME, name, "internal")


def stream_id(name: str) -> int:
    """The id of an ST_ name (any case); ``KeyError`` when unknown."""
    return _lookup(_STREAM_BY_NAME, name, "stream")


def type_name(command: int, type_id: int) -> str:
    """The type's name for its command (S_ for presentation, V_ for set/req, I_ internal, ST_ stream)."""
    if command == Command.PRESENTATION:
        return sensor_name(type_id)
    if command in (Command.SET, Command.REQ):
        return value_name(type_id)
    if command == Command.INTERNAL:
        return internal_name(type_id)
    if command == Command.STREAM:
        return stream_name(type_id)
    raise ValueError(f"MySensors command {command} is not 0-4")
