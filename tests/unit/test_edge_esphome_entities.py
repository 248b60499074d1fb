"""The ESPHome gateway's mapping of ``aioesphomeapi`` entities and states (the kinds the fake device does not
have: climate, valve, event, text, siren), source ids when object ids collide, messages cut to fit an envelope,
and commands to those kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aioesphomeapi import (
    APIVersion,
    ClimateInfo,
    ClimateMode,
    ClimateState,
    Event,
    EventInfo,
    LightInfo,
    NumberInfo,
    SensorInfo,
    SensorState,
    SirenInfo,
    TextInfo,
    TextState,
    ValveInfo,
    ValveState,
)
from aioesphomeapi.model import ClimateAction, ClimateFeature, ValveOperation

from edge.gateways.esphome.entities import (
    EspHomeCommandRefused,
    climate_unit,
    entity_message,
    index_entities,
    run_command,
    state_message,
)
from mycontroller_protocol.envelope import MAX_RAW_BYTES

API = APIVersion(1, 12)


class RecordingClient:
    """Stands in for ``APIClient``: records the commands it is asked to send."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record


def test_object_ids_shared_by_two_kinds_get_their_kind_in_front() -> None:
    entities = index_entities([SensorInfo(object_id="temperature", key=1, name="Temperature"),
                               NumberInfo(object_id="temperature", key=2, name="Temperature setpoint"),
                               TextInfo(object_id="", key=3, name="Display Text")])
    assert {source: (e.kind, e.key) for source, e in entities.items()} == {
        "sensor_temperature": ("sensor", 1), "number_temperature": ("number", 2), "display_text": ("text", 3)}


def test_climate_valve_event_text_and_siren_states() -> None:
    climate = index_entities([ClimateInfo(object_id="thermostat", key=5, name="Thermostat",
                                          feature_flags=ClimateFeature.SUPPORTS_CURRENT_TEMPERATURE
                                          | ClimateFeature.SUPPORTS_ACTION, temperature_unit=1)])["thermostat"]
    state = ClimateState(key=5, mode=ClimateMode.HEAT, action=ClimateAction.HEATING, current_temperature=19.456,
                         target_temperature=21.0)
    message = state_message("hall", climate, state, APIVersion(1, 13), climate_unit(climate.info))  # feature flags
    assert message == {"t": "state", "n": "hall", "s": "thermostat", "k": "climate", "u": "°F", "v": {
        "mode": "heat", "action": "heating", "current_temperature": 19.46, "target_temperature": 21.0}}

    valve = index_entities([ValveInfo(object_id="water", key=6, supports_position=True)])["water"]
    assert state_message("hall", valve, ValveState(key=6, position=0.0, current_operation=ValveOperation.IS_CLOSING),
                         API)["v"] == {"closed": True, "op": "closing", "position": 0.0}  # type: ignore[index]
    event = index_entities([EventInfo(object_id="doorbell", key=7, event_types=["ring"])])["doorbell"]
    assert state_message("hall", event, Event(key=7, event_type="ring"), API)["v"] == "ring"  # type: ignore[index]
    text = index_entities([TextInfo(object_id="note", key=8)])["note"]
    assert state_message("hall", text, TextState(key=8, state="hi"), API)["v"] == "hi"  # type: ignore[index]
    assert state_message("hall", text, TextState(key=8, missing_state=True), API) is None
    sensor = index_entities([SensorInfo(object_id="t", key=9, accuracy_decimals=2)])["t"]
    assert state_message("hall", sensor, SensorState(key=9, state=float("nan")), API) is None
    assert state_message("hall", sensor, SensorState(key=9, state=1.23456), API)["v"] == 1.23  # type: ignore[index]


def test_commands_to_climate_valve_text_and_siren_and_refusals() -> None:
    entities = index_entities([ClimateInfo(object_id="thermostat", key=5), ValveInfo(object_id="water", key=6),
                               TextInfo(object_id="note", key=8), SirenInfo(object_id="alarm", key=9),
                               SensorInfo(object_id="t", key=10), EventInfo(object_id="bell", key=11)])
    client = RecordingClient()
    run_command(client, entities["thermostat"], "mode", "heat_cool")  # type: ignore[arg-type]
    run_command(client, entities["thermostat"], "target_temperature", 21.5)  # type: ignore[arg-type]
    run_command(client, entities["water"], "state", "open")  # type: ignore[arg-type]
    run_command(client, entities["water"], "position", 0.5)  # type: ignore[arg-type]
    run_command(client, entities["water"], "state", "stop")  # type: ignore[arg-type]
    run_command(client, entities["note"], "state", "hello")  # type: ignore[arg-type]
    run_command(client, entities["alarm"], "state", True)  # type: ignore[arg-type]
    assert client.calls == [
        ("climate_command", (5,), {"mode": ClimateMode.HEAT_COOL, "device_id": 0}),
        ("climate_command", (5,), {"target_temperature": 21.5, "device_id": 0}),
        ("valve_command", (6,), {"position": 1.0, "device_id": 0}),
        ("valve_command", (6,), {"position": 0.5, "device_id": 0}),
        ("valve_command", (6,), {"stop": True, "device_id": 0}),
        ("text_command", (8, "hello"), {"device_id": 0}),
        ("siren_command", (9,), {"state": True, "device_id": 0}),
    ]
    for source, field, value, why in (("t", "state", 1, "read-only"), ("bell", "event_type", "x", "read-only"),
                                      ("water", "tilt", 0.5, "does not tilt"),
                                      ("water", "state", "toggle", "takes open, close, stop")):
        with pytest.raises(EspHomeCommandRefused, match=why):
            run_command(client, entities[source], field, value)  # type: ignore[arg-type]


def test_an_entity_with_too_many_effects_still_fits_an_envelope() -> None:
    light = index_entities([LightInfo(object_id="strip", key=1, name="Strip", supported_color_modes=[35],
                                      effects=[f"Effect number {i} with a long name" for i in range(400)])])["strip"]
    message = entity_message("hall", light, API)
    assert len(json.dumps(message, ensure_ascii=False)) <= MAX_RAW_BYTES
    assert 0 < len(message["fx"]) < 400 and message["modes"] == ["on_off", "brightness", "rgb"]
