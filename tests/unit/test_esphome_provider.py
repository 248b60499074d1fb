"""The ESPHome provider: device, entity and state messages become nodes, sources and fields with the right metric
types and units; field actions become commands in ESPHome's units, and bad ones are refused naming the payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.actions import ActionError, node_action, set_field
from chalicelib.core.model import FieldModel, Gateway, Kind, Node, Record
from chalicelib.core.ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op, SourceInfo
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from chalicelib.core.providers.esphome import (
    EspHomeInterpreter,
    command_value,
    hex_rgb,
    parse_rgb,
    read_downlink,
)
from mycontroller_protocol.envelope import Envelope

T0 = 1_767_225_600_000
GATEWAY: Record = {"id": "esp", "provider": {"type": "esphome"}}
INTERPRETER = EspHomeInterpreter()


def interpret(message: dict[str, Any] | str) -> list[Op]:
    raw = message if isinstance(message, str) else json.dumps(message)
    return INTERPRETER.interpret(Envelope("esp", "esphome", T0, 1, "m1", raw), GATEWAY)


def state(kind: str, value: Any, source: str = "thing", **extra: Any) -> list[Op]:
    return interpret({"t": "state", "n": "kitchen", "s": source, "k": kind, "v": value, **extra})


def fields_of(ops: list[Op]) -> dict[str, tuple[Any, str, str]]:
    return {op.field_id: (op.value, op.metric_type, op.unit) for op in ops if isinstance(op, FieldValue)}


# --------------------------------------------------------------------------------------------- interpreter


def test_device_info_names_the_node_and_keeps_its_facts() -> None:
    ops = interpret({"t": "device", "n": "kitchen", "name": "kitchen-node", "fn": "Kitchen", "mac": "AC:67:B2:11:22:33",
                     "model": "esp32dev", "mf": "Espressif", "ver": "2026.6.0", "pver": "1.2", "addr": "192.168.1.60",
                     "web": 80, "built": "Jun 30 2026"})
    info, seen = ops
    assert isinstance(info, NodeInfo) and isinstance(seen, NodeSeen)
    assert info.name == "Kitchen"
    assert info.labels == {"library_version": "2026.6.0", "version": "1.2"}
    assert info.others == {"mac_address": "AC:67:B2:11:22:33", "model": "esp32dev", "manufacturer": "Espressif",
                           "compilation_time": "Jun 30 2026", "esphome_name": "kitchen-node",
                           "ip_address": "192.168.1.60", "node_web_url": "http://192.168.1.60"}


def test_entities_become_labelled_sources_and_a_button_gets_a_field_to_press() -> None:
    (sensor,) = interpret({"t": "entity", "n": "kitchen", "s": "temperature", "k": "sensor", "name": "Temperature",
                           "dc": "temperature", "u": "°C", "sc": "measurement"})
    assert isinstance(sensor, SourceInfo) and sensor.name == "Temperature"
    assert sensor.labels == {"esphome_type": "sensor", "device_class": "temperature", "state_class": "measurement"}
    (select,) = interpret({"t": "entity", "n": "kitchen", "s": "mode", "k": "select", "name": "Mode",
                           "opts": ["eco", "comfort"]})
    assert isinstance(select, SourceInfo) and json.loads(select.labels["options"]) == ["eco", "comfort"]
    (number,) = interpret({"t": "entity", "n": "kitchen", "s": "target", "k": "number", "min": 5, "max": 30,
                           "step": 0.5})
    assert isinstance(number, SourceInfo)
    assert (number.labels["min"], number.labels["max"], number.labels["step"]) == ("5", "30", "0.5")
    source, press = interpret({"t": "entity", "n": "kitchen", "s": "restart", "k": "button", "name": "Restart",
                               "dc": "restart", "ec": "config"})
    assert isinstance(source, SourceInfo) and source.labels["entity_category"] == "config"
    assert press == FieldValue("kitchen", "restart", "press", "", "none", "", "Press")


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("sensor", 21.4, (21.4, "gauge_float", "°C")),
    ("binary_sensor", True, (True, "binary", "")),
    ("text_sensor", "v1.2", ("v1.2", "string", "")),
    ("switch", False, (False, "binary", "")),
    ("number", 22.5, (22.5, "gauge_float", "°C")),
    ("select", "eco", ("eco", "string", "")),
    ("text", "hello", ("hello", "string", "")),
    ("lock", "locked", ("locked", "string", "")),
])
def test_one_value_kinds_have_a_state_field_typed_by_kind(kind: str, value: Any, expected: tuple[Any, ...]) -> None:
    assert fields_of(state(kind, value, u="°C")) == {"state": expected}


def test_light_state_in_percent_hex_and_mireds() -> None:
    ops = state("light", {"state": True, "brightness": 0.502, "rgb": [1.0, 0.5, 0.0], "color_temperature": 370.04,
                          "white": 0.25, "effect": "Rainbow"})
    assert fields_of(ops) == {"state": (True, "binary", ""), "brightness": (50.2, "gauge_float", "%"),
                              "rgb": ("#ff8000", "string", ""), "color_temperature": (370.0, "gauge_float", "mired"),
                              "white": (25.0, "gauge_float", "%"), "effect": ("Rainbow", "string", "")}
    assert fields_of(state("light", {"state": False})) == {"state": (False, "binary", "")}  # an on/off light


def test_cover_fan_climate_and_event() -> None:
    assert fields_of(state("cover", {"closed": False, "op": "opening", "position": 0.3, "tilt": 1.0})) == {
        "position": (30.0, "gauge_float", "%"), "tilt": (100.0, "gauge_float", "%"), "state": ("open", "string", ""),
        "current_operation": ("opening", "string", "")}
    assert fields_of(state("fan", {"state": True, "speed_level": 3, "oscillating": False, "direction": "forward"})) \
        == {"state": (True, "binary", ""), "speed_level": (3, "gauge", ""), "oscillating": (False, "binary", ""),
            "direction": ("forward", "string", "")}
    assert fields_of(state("climate", {"mode": "heat", "action": "heating", "current_temperature": 19.5,
                                       "target_temperature": 21.0}, u="°F")) == {
        "mode": ("heat", "string", ""), "action": ("heating", "string", ""),
        "current_temperature": (19.5, "gauge_float", "°F"), "target_temperature": (21.0, "gauge_float", "°F")}
    assert fields_of(state("event", "double_click")) == {"event_type": ("double_click", "string", "")}


def test_offline_marks_the_node_down() -> None:
    assert interpret({"t": "offline", "n": "kitchen", "m": "EOF received"}) == [
        NodeState("kitchen", "down", "EOF received")]


@pytest.mark.parametrize("raw", [
    "not json", "[]", json.dumps({"t": "weird", "n": "kitchen"}), json.dumps({"t": "state", "s": "x", "k": "sensor",
                                                                              "v": 1}),
    json.dumps({"t": "state", "n": "kit.chen", "s": "x", "k": "sensor", "v": 1}),
    json.dumps({"t": "state", "n": "kitchen", "s": "x", "k": "sensor", "v": "warm"}),
    json.dumps({"t": "state", "n": "kitchen", "s": "x", "k": "sensor"}),
    json.dumps({"t": "state", "n": "kitchen", "s": "x", "k": "light", "v": 3}),
    json.dumps({"t": "state", "n": "kitchen", "s": "x", "k": "light", "v": {"rgb": [1, 2]}}),
    json.dumps({"t": "state", "n": "kitchen", "s": "x", "k": "alarm_control_panel", "v": {}}),
    json.dumps({"t": "entity", "n": "kitchen", "s": "x"}),
])
def test_bad_messages_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InterpretError):
        interpret(raw)


@given(st.dictionaries(st.sampled_from(["t", "n", "s", "k", "v", "u", "name", "opts"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                                 st.lists(st.integers(), max_size=4))))
def test_arbitrary_messages_never_escape_as_anything_but_interpret_errors(message: dict[str, Any]) -> None:
    try:
        interpret(message)
    except InterpretError:
        pass


def test_through_the_processor_fields_get_their_types_and_units() -> None:
    repo = MemoryRepository(None)
    processor = Processor(repo, EmbeddedMetricStore(":memory:"), default_interpreters(), clock=lambda: T0)
    messages = [
        {"t": "device", "n": "kitchen", "name": "kitchen-node", "fn": "Kitchen", "ver": "2026.6.0"},
        {"t": "entity", "n": "kitchen", "s": "temperature", "k": "sensor", "name": "Temperature", "u": "°C"},
        {"t": "entity", "n": "kitchen", "s": "ceiling", "k": "light", "name": "Ceiling"},
        {"t": "entity", "n": "kitchen", "s": "restart", "k": "button", "name": "Restart", "dc": "restart"},
        {"t": "state", "n": "kitchen", "s": "temperature", "k": "sensor", "v": 21.4, "u": "°C"},
        {"t": "state", "n": "kitchen", "s": "ceiling", "k": "light", "v": {"state": True, "brightness": 0.5}},
    ]
    envelopes = [Envelope("esp", "esphome", T0 + i, i + 1, f"m{i}", json.dumps(m)) for i, m in enumerate(messages)]
    result = processor.process(envelopes)
    assert not result.failures
    node = repo.get(Kind.NODE, "esp.kitchen")
    assert node is not None and node["name"] == "Kitchen" and node["labels"]["library_version"] == "2026.6.0"
    source = repo.get(Kind.SOURCE, "esp.kitchen.ceiling")
    assert source is not None and source["name"] == "Ceiling" and source["labels"]["esphome_type"] == "light"
    temperature = repo.get(Kind.FIELD, "esp.kitchen.temperature.state")
    assert temperature is not None
    assert (temperature["metricType"], temperature["unit"], temperature["current"]["value"]) == ("gauge_float", "°C",
                                                                                                21.4)
    brightness = repo.get(Kind.FIELD, "esp.kitchen.ceiling.brightness")
    assert brightness is not None and (brightness["metricType"], brightness["unit"]) == ("gauge_float", "%")
    press = repo.get(Kind.FIELD, "esp.kitchen.restart.press")
    assert press is not None and press["metricType"] == "none"


# --------------------------------------------------------------------------------------------- actions


def esp_gateway() -> Record:
    return Gateway(id="esp", provider={"type": "esphome"}).record()


def field(field_id: str, metric_type: str, source: str = "ceiling", value: Any = None) -> Record:
    return FieldModel.model_validate({"gatewayId": "esp", "nodeId": "kitchen", "sourceId": source,
                                      "fieldId": field_id, "metricType": metric_type,
                                      "current": {"value": value}}).record()


@pytest.mark.parametrize(("field_id", "metric_type", "payload", "value"), [
    ("state", "binary", "on", True),
    ("state", "binary", "toggle", False),
    ("brightness", "gauge_float", 40, 0.4),
    ("rgb", "string", "#0080ff", [0.0, 0.502, 1.0]),
    ("rgb", "string", "255,0,0", [1.0, 0.0, 0.0]),
    ("color_temperature", "gauge_float", "370", 370.0),
    ("position", "gauge_float", 100, 1.0),
    ("state", "gauge_float", "21.5", 21.5),
    ("state", "string", "comfort", "comfort"),
    ("press", "none", "press", True),
    ("speed_level", "gauge", 2, 2),
    ("direction", "string", "Reverse", "reverse"),
    ("mode", "string", "heat_cool", "heat_cool"),
])
def test_set_field_sends_the_value_in_esphome_units(field_id: str, metric_type: str, payload: Any,
                                                     value: Any) -> None:
    current = True if payload == "toggle" else None
    downlink = set_field(esp_gateway(), field(field_id, metric_type, value=current), payload)
    assert (downlink.gateway_id, downlink.provider, downlink.node_id) == ("esp", "esphome", "kitchen")
    assert downlink.key == f"kitchen;ceiling;{field_id}"
    assert json.loads(downlink.raw) == {"n": "kitchen", "s": "ceiling", "f": field_id, "v": value}
    assert read_downlink(downlink.raw)["v"] == value


@pytest.mark.parametrize(("field_id", "metric_type", "payload"), [
    ("brightness", "gauge_float", 150), ("rgb", "string", "blue"), ("rgb", "string", "300,0,0"),
    ("color_temperature", "gauge_float", 0), ("direction", "string", "sideways"), ("mode", "string", "party"),
    ("speed_level", "gauge", 1.5), ("current_operation", "string", "opening"),
])
def test_values_an_entity_cannot_take_are_refused_naming_the_payload(field_id: str, metric_type: str,
                                                                     payload: Any) -> None:
    with pytest.raises(ActionError) as caught:
        set_field(esp_gateway(), field(field_id, metric_type), payload)
    assert caught.value.field == "payload"


def test_node_actions() -> None:
    node = Node(gateway_id="esp", node_id="kitchen").record()
    for action in ("reboot", "heartbeat_request", "refresh_node_info"):
        downlink = node_action(esp_gateway(), node, action)
        assert json.loads(downlink.raw) == {"n": "kitchen", "a": action} and downlink.provider == "esphome"
    with pytest.raises(ActionError) as caught:
        node_action(esp_gateway(), node, "reset")
    assert caught.value.field == "action"


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_rgb_survives_the_round_trip(red: int, green: int, blue: int) -> None:
    text = f"#{red:02x}{green:02x}{blue:02x}"
    assert hex_rgb(*parse_rgb(text)) == text


def test_command_value_needs_a_known_field() -> None:
    with pytest.raises(ValueError, match="takes no commands"):
        command_value("uptime", "gauge", 3)
