"""ESPHome entities at the edge: what ``aioesphomeapi`` reports, as the cloud's messages, and commands back.

The device knows its entities by a numeric key; the cloud knows them by node and source id. This module keeps
that map for one connection, writes device info, entity lists and states in the form
``mycontroller_protocol/esphome/codec.py`` describes (only the parts an entity supports: an on/off light
sends no brightness), and turns a downlink's field and value into the ``APIClient`` command for that entity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aioesphomeapi import (
    APIClient,
    APIVersion,
    ClimateInfo,
    ClimateMode,
    ClimateState,
    CoverInfo,
    CoverState,
    DeviceInfo,
    EntityInfo,
    EntityState,
    Event,
    FanDirection,
    FanInfo,
    FanState,
    LightColorCapability,
    LightInfo,
    LightState,
    LockCommand,
    LockEntityState,
    NumberInfo,
    SelectInfo,
    SensorInfo,
    ValveInfo,
    ValveState,
)
from aioesphomeapi.model import COMPONENT_TYPE_TO_INFO

from mycontroller_protocol.envelope import MAX_RAW_BYTES
from mycontroller_protocol.esphome import codec

from ...errors import EdgeError
from ..util import clean_id

KIND_OF: Final[dict[type[EntityInfo], str]] = {cls: kind for kind, cls in COMPONENT_TYPE_TO_INFO.items()}
"""``SensorInfo`` → ``sensor``…: the kind names ESPHome's YAML uses."""

_READ_ONLY: Final = frozenset({"sensor", "binary_sensor", "text_sensor", "event", "camera", "date", "time",
                               "datetime", "update"})
_SIMPLE_STATE: Final = frozenset({"sensor", "binary_sensor", "text_sensor", "switch", "number", "select", "text",
                                  "siren"})


class EspHomeCommandRefused(EdgeError, ValueError):
    """A downlink this device cannot carry out (no such entity, a read-only one, a value it does not take)."""


@dataclass(frozen=True, slots=True)
class Entity:
    kind: str
    source: str
    info: EntityInfo

    @property
    def key(self) -> int:
        return self.info.key

    @property
    def device_id(self) -> int:
        return self.info.device_id


def index_entities(infos: list[EntityInfo]) -> dict[str, Entity]:
    """Source id → entity. The source id is the ``object_id``; when two entities of a device share one (a
    ``sensor`` and a ``number`` both called ``temperature``), each of them gets its kind in front."""
    kinds: list[tuple[str, str, EntityInfo]] = []
    for info in infos:
        kind = KIND_OF.get(type(info))
        if kind is None:
            continue
        object_id = clean_id(info.object_id or info.name.lower().replace(" ", "_"), f"{kind}_{info.key}")
        kinds.append((kind, object_id, info))
    counts: dict[str, int] = {}
    for _kind, object_id, _info in kinds:
        counts[object_id] = counts.get(object_id, 0) + 1
    entities: dict[str, Entity] = {}
    for kind, object_id, info in kinds:
        source = object_id if counts[object_id] == 1 else clean_id(f"{kind}_{object_id}")
        if source in entities:
            source = clean_id(f"{source}_{info.key}")
        entities[source] = Entity(kind, source, info)
    return entities


# --------------------------------------------------------------------------------------------- device → cloud


def device_message(node: str, info: DeviceInfo, host: str) -> dict[str, Any]:
    message: dict[str, Any] = {"t": "device", "n": node, "name": info.name, "fn": info.friendly_name,
                               "mac": info.mac_address, "model": info.model, "mf": info.manufacturer,
                               "ver": info.esphome_version, "built": info.compilation_time,
                               "proj": info.project_name, "pver": info.project_version, "addr": host}
    if info.webserver_port:
        message["web"] = info.webserver_port
    if info.has_deep_sleep:
        message["sleep"] = True
    return {k: v for k, v in message.items() if v not in ("", None)}


def capabilities(info: LightInfo, api_version: APIVersion) -> int:
    """Every capability any of the light's colour modes has."""
    flags = 0
    for mode in info.supported_color_modes_compat(api_version):
        flags |= int(mode)
    return flags


def entity_message(node: str, entity: Entity, api_version: APIVersion) -> dict[str, Any]:
    info = entity.info
    message: dict[str, Any] = {"t": "entity", "n": node, "s": entity.source, "k": entity.kind, "name": info.name}
    device_class = getattr(info, "device_class", "")
    if device_class:
        message["dc"] = device_class
    category = getattr(info, "entity_category", None)
    if category is not None and int(category):
        message["ec"] = category.name.lower()
    if isinstance(info, SensorInfo | NumberInfo) and info.unit_of_measurement:
        message["u"] = info.unit_of_measurement
    if isinstance(info, SensorInfo) and info.state_class:
        message["sc"] = info.state_class.name.lower()
    if isinstance(info, NumberInfo):
        message.update(min=info.min_value, max=info.max_value, step=info.step)
    if isinstance(info, SelectInfo):
        message["opts"] = list(info.options)
    if isinstance(info, LightInfo):
        flags = capabilities(info, api_version)
        message["modes"] = [cap.name.lower() for cap in LightColorCapability if cap.name and flags & cap]
        if info.effects:
            message["fx"] = list(info.effects)
    return fit(message, ("fx", "opts"))


def fit(message: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """A message an envelope can carry: long lists (effects, options) are cut until it fits."""
    for key in optional:
        while len(json.dumps(message, ensure_ascii=False)) > MAX_RAW_BYTES - 64 and message.get(key):
            message[key] = message[key][: len(message[key]) // 2]
    return message


def _rounded(value: float, decimals: int | None) -> float | None:
    if not math.isfinite(value):
        return None
    return round(value, decimals) if decimals is not None else value


def state_message(node: str, entity: Entity, state: EntityState, api_version: APIVersion,
                  units: str | None = None) -> dict[str, Any] | None:
    """A state as the cloud reads it, or None when there is nothing to say (a missing or NaN reading)."""
    if getattr(state, "missing_state", False):
        return None
    value = _state_value(entity, state, api_version)
    if value is _NO_VALUE:
        return None
    message: dict[str, Any] = {"t": "state", "n": node, "s": entity.source, "k": entity.kind, "v": value}
    unit = units or getattr(entity.info, "unit_of_measurement", "")
    if unit:
        message["u"] = unit
    return message


_NO_VALUE: Final = object()
"""What ``_state_value`` answers for a state with nothing to say (``None`` is a value: an unset state)."""


def _state_value(entity: Entity, state: EntityState, api_version: APIVersion) -> Any:
    """The ``v`` of a state message, by the entity's kind, or ``_NO_VALUE``."""
    info = entity.info
    if entity.kind in _SIMPLE_STATE:
        return _simple_state(info, state)
    if isinstance(state, LockEntityState):
        return state.state.name.lower() if state.state is not None else "none"
    if isinstance(state, Event):
        return state.event_type
    if isinstance(state, LightState) and isinstance(info, LightInfo):
        return _light_state(info, state, api_version)
    if isinstance(state, CoverState) and isinstance(info, CoverInfo):
        return _cover_state(info, state, api_version)
    if isinstance(state, ValveState) and isinstance(info, ValveInfo):
        return _valve_state(info, state)
    if isinstance(state, FanState) and isinstance(info, FanInfo):
        return _fan_state(info, state)
    if isinstance(state, ClimateState) and isinstance(info, ClimateInfo):
        return _climate_state(info, state, api_version)
    return _NO_VALUE


def _simple_state(info: EntityInfo, state: EntityState) -> Any:
    """A sensor's, switch's, number's... ``state`` as it is, a float rounded to the sensor's accuracy (NaN or
    infinite: ``_NO_VALUE``)."""
    value = getattr(state, "state", None)
    if not isinstance(value, float):
        return value
    rounded = _rounded(value, info.accuracy_decimals if isinstance(info, SensorInfo) else None)
    return _NO_VALUE if rounded is None else rounded


def _cover_state(info: CoverInfo, state: CoverState, api_version: APIVersion) -> dict[str, Any]:
    value: dict[str, Any] = {"closed": state.is_closed(api_version), "op": _operation(state.current_operation)}
    if info.supports_position:
        value["position"] = round(state.position, 4)
    if info.supports_tilt:
        value["tilt"] = round(state.tilt, 4)
    return value


def _valve_state(info: ValveInfo, state: ValveState) -> dict[str, Any]:
    value: dict[str, Any] = {"closed": state.position == 0.0, "op": _operation(state.current_operation)}
    if info.supports_position:
        value["position"] = round(state.position, 4)
    return value


def _fan_state(info: FanInfo, state: FanState) -> dict[str, Any]:
    value: dict[str, Any] = {"state": state.state}
    if info.supports_speed:
        value["speed_level"] = state.speed_level
    if info.supports_oscillation:
        value["oscillating"] = state.oscillating
    if info.supports_direction and state.direction is not None:
        value["direction"] = state.direction.name.lower()
    if info.supported_preset_modes:
        value["preset_mode"] = state.preset_mode
    return value


def _operation(operation: Any) -> str:
    name = operation.name.lower() if operation is not None else "idle"
    return name.removeprefix("is_")


def _light_state(info: LightInfo, state: LightState, api_version: APIVersion) -> dict[str, Any]:
    flags = capabilities(info, api_version)
    value: dict[str, Any] = {"state": state.state}
    if flags & LightColorCapability.BRIGHTNESS:
        value["brightness"] = round(state.brightness, 4)
    if flags & LightColorCapability.RGB:
        value["rgb"] = [round(state.red, 4), round(state.green, 4), round(state.blue, 4)]
    if flags & LightColorCapability.COLOR_TEMPERATURE and state.color_temperature > 0:
        value["color_temperature"] = round(state.color_temperature, 1)
    if flags & LightColorCapability.WHITE:
        value["white"] = round(state.white, 4)
    if info.effects and state.effect:
        value["effect"] = state.effect
    return value


def _climate_state(info: ClimateInfo, state: ClimateState, api_version: APIVersion) -> dict[str, Any]:
    from aioesphomeapi.model import ClimateFeature

    flags = info.supported_feature_flags_compat(api_version)
    value: dict[str, Any] = {"mode": state.mode.name.lower() if state.mode is not None else "off"}
    if flags & ClimateFeature.SUPPORTS_ACTION and state.action is not None:
        value["action"] = state.action.name.lower()
    if flags & ClimateFeature.SUPPORTS_CURRENT_TEMPERATURE and math.isfinite(state.current_temperature):
        value["current_temperature"] = round(state.current_temperature, 2)
    if flags & (ClimateFeature.SUPPORTS_TWO_POINT_TARGET_TEMPERATURE
                | ClimateFeature.REQUIRES_TWO_POINT_TARGET_TEMPERATURE):
        value["target_temperature_low"] = round(state.target_temperature_low, 2)
        value["target_temperature_high"] = round(state.target_temperature_high, 2)
    else:
        value["target_temperature"] = round(state.target_temperature, 2)
    return value


def climate_unit(info: EntityInfo) -> str | None:
    if not isinstance(info, ClimateInfo) or info.temperature_unit is None:
        return None
    return {"CELSIUS": "°C", "FAHRENHEIT": "°F", "KELVIN": "K"}.get(info.temperature_unit.name, "°C")


# --------------------------------------------------------------------------------------------- cloud → device


def run_command(client: APIClient, entity: Entity, field: str, value: Any) -> str:
    """Send one field's new value to its entity; returns what was done (for the log).

    ``EspHomeCommandRefused`` when the entity does not take that field or value: the cloud checked the value's
    form, only the device knows its entity's kind, options and range.
    """
    kind = entity.kind

    def refuse(why: str) -> EspHomeCommandRefused:
        return EspHomeCommandRefused(f"{kind} {entity.source!r}: {why}")

    if kind in _READ_ONLY:
        raise refuse("is read-only")
    if field == codec.STATE and kind in _STATE_COMMANDS:
        return _STATE_COMMANDS[kind](client, entity, value, refuse)
    command = _FIELD_COMMANDS.get(kind)
    if command is not None:
        return command(client, entity, field, value, refuse)
    raise refuse(f"takes no field {field!r}")


def _switch_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    client.switch_command(entity.key, bool(value), device_id=entity.device_id)
    return f"switch {'on' if value else 'off'}"


def _siren_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    client.siren_command(entity.key, state=bool(value), device_id=entity.device_id)
    return f"siren {'on' if value else 'off'}"


def _number_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    info = entity.info
    assert isinstance(info, NumberInfo)
    number = float(value)
    if info.max_value > info.min_value and not info.min_value <= number <= info.max_value:
        raise refuse(f"{number:g} is outside {info.min_value:g}..{info.max_value:g}")
    client.number_command(entity.key, number, device_id=entity.device_id)
    return f"number {number:g}"


def _select_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    info = entity.info
    assert isinstance(info, SelectInfo)
    if str(value) not in info.options:
        raise refuse(f"{value!r} is not one of its options {info.options}")
    client.select_command(entity.key, str(value), device_id=entity.device_id)
    return f"select {value}"


def _text_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    client.text_command(entity.key, str(value), device_id=entity.device_id)
    return "text set"


def _lock_command(client: APIClient, entity: Entity, value: Any, refuse: Any) -> str:
    command = str(value).strip().lower()
    if command not in codec.LOCK_COMMANDS:
        raise refuse(f"takes lock, unlock or open, not {value!r}")
    client.lock_command(entity.key, LockCommand[command.upper()], device_id=entity.device_id)
    return f"lock {command}"


def _button_command(client: APIClient, entity: Entity, field: str, value: Any, refuse: Any) -> str:
    if field != codec.PRESS:
        raise refuse(f"a button is pressed through its field 'press', not {field!r}")
    client.button_command(entity.key, device_id=entity.device_id)
    return "pressed"


def _climate_command(client: APIClient, entity: Entity, field: str, value: Any, refuse: Any) -> str:
    key, device = entity.key, entity.device_id
    if field == codec.MODE:
        client.climate_command(key, mode=ClimateMode[str(value).upper()], device_id=device)
        return f"climate mode {value}"
    if field == codec.TARGET_TEMPERATURE:
        client.climate_command(key, target_temperature=float(value), device_id=device)
    elif field == codec.TARGET_TEMPERATURE_LOW:
        client.climate_command(key, target_temperature_low=float(value), device_id=device)
    elif field == codec.TARGET_TEMPERATURE_HIGH:
        client.climate_command(key, target_temperature_high=float(value), device_id=device)
    else:
        raise refuse(f"takes no field {field!r}")
    return f"climate {field} {value}"


def _light_command(client: APIClient, entity: Entity, field: str, value: Any, refuse: Any) -> str:
    key, device = entity.key, entity.device_id
    if field == codec.STATE:
        client.light_command(key, state=bool(value), device_id=device)
        return f"light {'on' if value else 'off'}"
    if field == codec.BRIGHTNESS:
        client.light_command(key, state=True, brightness=float(value), device_id=device)
    elif field == codec.RGB:
        if not isinstance(value, list) or len(value) != 3:
            raise refuse(f"rgb must be three channels, got {value!r}")
        red, green, blue = (float(c) for c in value)
        client.light_command(key, state=True, rgb=(red, green, blue), device_id=device)
    elif field == codec.COLOR_TEMPERATURE:
        client.light_command(key, state=True, color_temperature=float(value), device_id=device)
    elif field == codec.WHITE:
        client.light_command(key, state=True, white=float(value), device_id=device)
    elif field == codec.EFFECT:
        client.light_command(key, state=True, effect=str(value), device_id=device)
    else:
        raise refuse(f"takes no field {field!r}")
    return f"light {field} {value}"


def _cover_command(client: APIClient, entity: Entity, field: str, value: Any, refuse: Any) -> str:
    key, device, info = entity.key, entity.device_id, entity.info
    valve = entity.kind == "valve"
    if field in (codec.POSITION, codec.TILT):
        if field == codec.TILT and (valve or not getattr(info, "supports_tilt", False)):
            raise refuse("does not tilt")
        if valve:
            client.valve_command(key, position=float(value), device_id=device)
        elif field == codec.TILT:
            client.cover_command(key, tilt=float(value), device_id=device)
        else:
            client.cover_command(key, position=float(value), device_id=device)
        return f"{field} {value}"
    if field == codec.STATE:
        command = str(value).strip().lower()
        position = {"open": 1.0, "close": 0.0, "closed": 0.0}.get(command)
        if position is not None:
            if valve:
                client.valve_command(key, position=position, device_id=device)
            else:
                client.cover_command(key, position=position, device_id=device)
        elif command == "stop":
            if valve:
                client.valve_command(key, stop=True, device_id=device)
            else:
                client.cover_command(key, stop=True, device_id=device)
        elif command == "toggle" and not valve:
            client.cover_command(key, toggle=True, device_id=device)
        else:
            raise refuse(f"takes open, close, stop or toggle, not {value!r}")
        return f"{entity.kind} {command}"
    raise refuse(f"takes no field {field!r}")


def _fan_command(client: APIClient, entity: Entity, field: str, value: Any, refuse: Any) -> str:
    key, device = entity.key, entity.device_id
    if field == codec.STATE:
        client.fan_command(key, state=bool(value), device_id=device)
    elif field == codec.SPEED_LEVEL:
        client.fan_command(key, state=True, speed_level=int(value), device_id=device)
    elif field == codec.OSCILLATING:
        client.fan_command(key, oscillating=bool(value), device_id=device)
    elif field == codec.DIRECTION:
        client.fan_command(key, direction=FanDirection[str(value).upper()], device_id=device)
    elif field == codec.PRESET_MODE:
        client.fan_command(key, preset_mode=str(value), device_id=device)
    else:
        raise refuse(f"takes no field {field!r}")
    return f"fan {field} {value}"


_STATE_COMMANDS: Final[dict[str, Callable[[APIClient, Entity, Any, Any], str]]] = {
    "switch": _switch_command, "siren": _siren_command, "number": _number_command, "select": _select_command,
    "text": _text_command, "lock": _lock_command}
"""Kinds whose field ``state`` is their one command."""
_FIELD_COMMANDS: Final[dict[str, Callable[[APIClient, Entity, str, Any, Any], str]]] = {
    "button": _button_command, "light": _light_command, "cover": _cover_command, "valve": _cover_command,
    "fan": _fan_command, "climate": _climate_command}
"""Kinds that take commands on several fields (each refuses a field it does not have)."""
