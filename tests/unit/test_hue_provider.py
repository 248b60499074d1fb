"""The Philips Hue provider: bridge resources become nodes, sources and fields with the right metric types and
units; colours convert between ``#rrggbb`` and CIE xy; field actions become commands in the bridge's terms; the
edge places every resource on its node and source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.actions import ActionError, node_action, set_field
from chalicelib.core.model import FieldModel, Gateway, Kind, Node, Record
from chalicelib.core.ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from chalicelib.core.providers.hue import HueInterpreter, lux, parse_color, read_downlink, rgb_to_xy, xy_to_hex
from edge.gateways.hue.resources import HueIndex, trim
from mycontroller_protocol.envelope import Envelope
from tests.integration.hue_fake import FakeHueBridge

T0 = 1_767_225_600_000
GATEWAY: Record = {"id": "hue", "provider": {"type": "philips_hue"}}
INTERPRETER = HueInterpreter()
NODE = "5e6c6ee4-083f-49a8-875c-7550fa7709fb"


def interpret(resource: dict[str, Any], source: str | None = "light", node: str = NODE) -> list[Op]:
    message: dict[str, Any] = {"n": node, "r": resource}
    if source is not None:
        message["s"] = source
    return INTERPRETER.interpret(Envelope("hue", "philips_hue", T0, 1, "m1", json.dumps(message)), GATEWAY)


def fields_of(ops: list[Op]) -> dict[str, tuple[Any, str, str]]:
    return {op.field_id: (op.value, op.metric_type, op.unit) for op in ops if isinstance(op, FieldValue)}


# --------------------------------------------------------------------------------------------- interpreter


def test_a_colour_lamp_has_on_brightness_colour_temperature_and_colour() -> None:
    ops = interpret({"id": "l1", "type": "light", "on": {"on": True}, "dimming": {"brightness": 42.5},
                     "color_temperature": {"mirek": 366, "mirek_valid": True}, "color": {"xy": {"x": 0.64, "y": 0.33}}})
    assert fields_of(ops) == {"on": (True, "binary", ""), "brightness": (42.5, "gauge_float", "%"),
                              "color_temperature": (366, "gauge", "mired"), "color": ("#ff0000", "string", "")}
    # in colour mode the bridge says the colour temperature is not valid: not reported
    ops = interpret({"id": "l1", "type": "light", "on": {"on": True}, "color_temperature": {"mirek": None,
                                                                                          "mirek_valid": False}})
    assert fields_of(ops) == {"on": (True, "binary", "")}


def test_sensors_buttons_battery_and_connectivity() -> None:
    assert fields_of(interpret({"id": "m", "type": "motion", "motion": {"motion_report": {"motion": True}}},
                               "motion")) == {"motion": (True, "binary", "")}
    assert fields_of(interpret({"id": "m", "type": "motion", "motion": {"motion": True, "motion_valid": False}},
                               "motion")) == {}
    assert fields_of(interpret({"id": "t", "type": "temperature", "temperature": {"temperature_report": {
        "temperature": 21.561}}}, "temperature")) == {"temperature": (21.56, "gauge_float", "°C")}
    assert fields_of(interpret({"id": "ll", "type": "light_level", "light": {"light_level_report": {
        "light_level": 20001}}}, "light_level")) == {"light_level": (100.0, "gauge_float", "lx")}
    assert fields_of(interpret({"id": "b", "type": "button", "button": {"button_report": {"event": "long_press"}}},
                               "button_2")) == {"event": ("long_press", "string", "")}
    (power,) = interpret({"id": "p", "type": "device_power", "power_state": {"battery_level": 9,
                                                                             "battery_state": "low"}}, "device_power")
    assert isinstance(power, NodeInfo)
    assert power.others == {"battery_level": 9, "battery_state": "low"}
    assert power.metric == ("battery_level", "gauge", 9.0)
    assert interpret({"id": "z", "type": "zigbee_connectivity", "status": "connectivity_issue"}, None) == [
        NodeState(NODE, "down", "zigbee connectivity_issue")]
    assert interpret({"id": "z", "type": "zigbee_connectivity", "status": "connected"}, None) == [NodeSeen(NODE)]


def test_devices_rooms_and_zones_describe_their_nodes() -> None:
    info, seen = interpret({"id": NODE, "type": "device", "id_v1": "/lights/1", "metadata": {
        "name": "Sofa lamp", "archetype": "sultan_bulb"}, "product_data": {
        "model_id": "LCA001", "manufacturer_name": "Signify Netherlands B.V.", "product_name": "Hue color lamp",
        "software_version": "1.116.3"}}, None)
    assert isinstance(info, NodeInfo) and isinstance(seen, NodeSeen)
    assert info.name == "Sofa lamp"
    assert info.labels == {"hue_type": "device", "version": "1.116.3"}
    assert info.others == {"model_id": "LCA001", "manufacturer": "Signify Netherlands B.V.",
                           "product_name": "Hue color lamp", "archetype": "sultan_bulb", "hue_id_v1": "/lights/1"}
    (room,) = interpret({"id": "r", "type": "room", "metadata": {"name": "Living room", "archetype": "living_room"}},
                        None, node="r")
    assert isinstance(room, NodeInfo) and room.labels == {"hue_type": "room"} and room.name == "Living room"
    assert interpret({"id": "x", "type": "scene"}, None) == []


@pytest.mark.parametrize("raw", [
    "nope", json.dumps({"n": NODE}), json.dumps({"n": "a.b", "r": {"type": "light"}}),
    json.dumps({"n": NODE, "r": {"type": "light"}}),  # a service without its source
    json.dumps({"n": NODE, "s": "light", "r": {"type": "light", "dimming": {"brightness": "high"}}}),
    json.dumps({"n": NODE, "s": "x", "r": {"type": "wormhole"}}),
])
def test_bad_messages_are_refused(raw: str) -> None:
    with pytest.raises(InterpretError):
        INTERPRETER.interpret(Envelope("hue", "philips_hue", T0, 1, "m1", raw), GATEWAY)


# --------------------------------------------------------------------------------------------- colour


@pytest.mark.parametrize(("hex_colour", "xy"), [("#ff0000", (0.64, 0.33)), ("#00ff00", (0.3, 0.6)),
                                                 ("#0000ff", (0.15, 0.06)), ("#ffffff", (0.3127, 0.329))])
def test_srgb_primaries_and_white_are_where_cie_puts_them(hex_colour: str, xy: tuple[float, float]) -> None:
    x, y = parse_color(hex_colour)
    assert x == pytest.approx(xy[0], abs=0.001) and y == pytest.approx(xy[1], abs=0.001)
    assert xy_to_hex(x, y) == hex_colour


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_the_colour_shown_is_the_colour_set(red: int, green: int, blue: int) -> None:
    """``#rrggbb`` → xy (sent to the lamp) → ``#rrggbb`` (reported back) → xy again lands on the same colour."""
    x, y = rgb_to_xy(red, green, blue)
    assert 0 <= x <= 1 and 0 <= y <= 1
    again = parse_color(xy_to_hex(x, y))
    assert again[0] == pytest.approx(x, abs=0.01) and again[1] == pytest.approx(y, abs=0.01)


def test_light_level_is_lux() -> None:
    assert lux(1) == 1.0 and lux(10001) == 10.0 and lux(30001) == 1000.0


# --------------------------------------------------------------------------------------------- actions


def hue_gateway() -> Record:
    return Gateway(id="hue", provider={"type": "philips_hue"}).record()


def field(field_id: str, metric_type: str, value: Any = None, source: str = "light") -> Record:
    return FieldModel.model_validate({"gatewayId": "hue", "nodeId": NODE, "sourceId": source, "fieldId": field_id,
                                      "metricType": metric_type, "current": {"value": value}}).record()


@pytest.mark.parametrize(("field_id", "metric_type", "payload", "value"), [
    ("on", "binary", "toggle", False), ("on", "binary", "on", True), ("brightness", "gauge_float", "33.3", 33.3),
    ("color_temperature", "gauge", 250, 250), ("color", "string", "#ff0000", {"x": 0.6401, "y": 0.33}),
    ("color", "string", "0.2,0.3", {"x": 0.2, "y": 0.3}),
])
def test_set_field_sends_the_bridges_terms(field_id: str, metric_type: str, payload: Any, value: Any) -> None:
    downlink = set_field(hue_gateway(), field(field_id, metric_type, True if payload == "toggle" else None), payload)
    assert downlink.provider == "philips_hue" and downlink.key == f"{NODE};light;{field_id}"
    assert json.loads(downlink.raw) == {"n": NODE, "s": "light", "f": field_id, "v": value}
    assert read_downlink(downlink.raw)["f"] == field_id


@pytest.mark.parametrize(("field_id", "metric_type", "payload"), [
    ("brightness", "gauge_float", 101), ("color_temperature", "gauge", 100), ("color", "string", "red"),
    ("color", "string", "1.5,0.2"), ("temperature", "gauge_float", 20), ("event", "string", "press"),
])
def test_what_a_bridge_cannot_do_is_refused_naming_the_payload(field_id: str, metric_type: str, payload: Any) -> None:
    with pytest.raises(ActionError) as caught:
        set_field(hue_gateway(), field(field_id, metric_type), payload)
    assert caught.value.field == "payload"


def test_node_actions() -> None:
    node = Node(gateway_id="hue", node_id=NODE).record()
    assert json.loads(node_action(hue_gateway(), node, "refresh_node_info").raw) == {"n": NODE,
                                                                                    "a": "refresh_node_info"}
    with pytest.raises(ActionError):
        node_action(hue_gateway(), node, "reboot")


# --------------------------------------------------------------------------------------------- the edge's index


def test_every_service_is_placed_on_its_device_or_room(tmp_path: Path) -> None:
    bridge = FakeHueBridge(tmp_path)
    home = bridge.home()
    resources = list(bridge.resources.values())
    index = HueIndex.build(resources)
    assert index.places[home.lamp_light] == (home.lamp, "light")
    assert index.places[home.room_group] == (home.room, "grouped_light")
    assert [index.places[b] for b in home.buttons] == [(home.dimmer, f"button_{n}") for n in (1, 2, 3, 4)]
    assert index.places[home.temperature] == (home.motion_sensor, "temperature")
    assert index.targets == {(home.lamp, "light"): ("light", home.lamp_light),
                             (home.white, "light"): ("light", home.white_light),
                             (home.room, "grouped_light"): ("grouped_light", home.room_group)}
    assert index.nodes[home.room] == "room" and index.nodes[home.dimmer] == "device"
    lamp = bridge.resources[home.lamp_light]
    message = index.message(lamp)
    assert message is not None and message["n"] == home.lamp and message["s"] == "light"
    assert message["r"] == trim(lamp)
    assert "gamut" not in json.dumps(message) and "metadata" not in message["r"]
    assert index.message({"id": "unknown", "type": "light"}) is None
    assert index.message(bridge.resources[home.bridge_device])["n"] == home.bridge_device  # type: ignore[index]

    # what the edge sends, the cloud reads
    repo = MemoryRepository(None)
    processor = Processor(repo, EmbeddedMetricStore(":memory:"), default_interpreters(), clock=lambda: T0)
    placed = [m for r in resources if (m := index.message(r)) is not None]
    envelopes = [Envelope("hue", "philips_hue", T0 + i, i + 1, f"m{i}", json.dumps(m)) for i, m in enumerate(placed)]
    result = processor.process(envelopes)
    assert not result.failures
    lamp_node = repo.get(Kind.NODE, f"hue.{home.lamp}")
    assert lamp_node is not None and lamp_node["name"] == "Sofa lamp"
    colour = repo.get(Kind.FIELD, f"hue.{home.lamp}.light.color")
    assert colour is not None and colour["metricType"] == "string" and colour["current"]["value"].startswith("#")
    room_on = repo.get(Kind.FIELD, f"hue.{home.room}.grouped_light.on")
    assert room_on is not None and room_on["metricType"] == "binary"
    dimmer = repo.get(Kind.NODE, f"hue.{home.dimmer}")
    assert dimmer is not None and dimmer["others"]["battery_level"] == 9
    level = repo.get(Kind.FIELD, f"hue.{home.motion_sensor}.light_level.light_level")
    assert level is not None and (level["unit"], level["current"]["value"]) == ("lx", 100.0)
