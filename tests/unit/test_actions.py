"""Actions become the right device messages, per provider, and bad ones fail naming the input at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.core.actions import (
    ActionError,
    gateway_action,
    node_action,
    provider_of,
    reset_node_labels,
    resolve_payload,
    set_field,
)
from chalicelib.core.model import FieldModel, Gateway, Node, Record


def gateway(provider: str = "mysensors_v2", gateway_id: str = "gw") -> Record:
    return Gateway(id=gateway_id, provider={"type": provider}).record()


def field(field_id: str = "V_STATUS", metric_type: str = "binary", value: Any = None, *, node: str = "4",
          source: str = "2", gateway_id: str = "gw") -> Record:
    return FieldModel.model_validate({"gatewayId": gateway_id, "nodeId": node, "sourceId": source,
                                      "fieldId": field_id, "metricType": metric_type,
                                      "current": {"value": value}}).record()


def node(node_id: str = "4", gateway_id: str = "gw") -> Record:
    return Node(gateway_id=gateway_id, node_id=node_id, labels={"room": "attic"}).record()


def error_field(call: Any, *args: Any) -> str | None:
    with pytest.raises(ActionError) as caught:
        call(*args)
    return caught.value.field


# --------------------------------------------------------------------------------------------- MySensors


@pytest.mark.parametrize(("payload", "wire"), [("on", "1"), ("off", "0"), ("true", "1"), (1, "1"), (False, "0"),
                                               ("0", "0")])
def test_mysensors_binary_set(payload: Any, wire: str) -> None:
    downlink = set_field(gateway(), field(), payload)
    assert downlink.raw == f"4;2;1;0;2;{wire}"
    assert (downlink.gateway_id, downlink.provider, downlink.node_id, downlink.key) == ("gw", "mysensors_v2", "4",
                                                                                        "4;2;2")
    assert downlink.topic is None


def test_mysensors_number_and_text_set() -> None:
    assert set_field(gateway(), field("V_PERCENTAGE", "gauge_float"), "42.5").raw == "4;2;1;0;3;42.5"
    assert set_field(gateway(), field("V_TEMP", "gauge_float"), 21).raw.startswith("4;2;1;0;0;21")


@pytest.mark.parametrize(("current", "wire"), [(True, "0"), (False, "1"), ("on", "0"), (None, "1"), (0, "1")])
def test_toggle_flips_the_current_value(current: Any, wire: str) -> None:
    assert set_field(gateway(), field(value=current), "toggle").raw == f"4;2;1;0;2;{wire}"
    assert set_field(gateway(), field(value=current), "TOGGLE").raw == f"4;2;1;0;2;{wire}"


@given(st.one_of(st.booleans(), st.none(), st.sampled_from(["on", "off", "1", "0", "true", "false"])))
def test_toggling_twice_comes_back(current: Any) -> None:
    once = resolve_payload(field(value=current), "toggle")
    twice = resolve_payload(field(value=once), "toggle")
    assert isinstance(once, bool) and twice is (not once)


@pytest.mark.parametrize(("record", "payload", "bad"), [
    (field("V_TEMP", "gauge_float"), "warm", "payload"),
    (field("V_TEMP", "gauge_float"), "toggle", "payload"),
    (field(), "maybe", "payload"),
    (field(), None, "payload"),
    (field(), {"on": 1}, "payload"),
    (field("V_NOT_A_TYPE", "string"), "x", "fieldId"),
    (field(node="kitchen"), "on", "nodeId"),
    (field(node="255"), "on", "nodeId"),
    ({**field(), "nodeId": "²"}, "on", "nodeId"),  # a record written by hand, past the model
    (field(source="300"), "on", "sourceId"),
])
def test_bad_set_field(record: Record, payload: Any, bad: str) -> None:
    assert error_field(set_field, gateway(), record, payload) == bad


def test_mysensors_payloads_must_fit_a_radio_message_and_the_gateways_framing() -> None:
    text = field("V_TEXT", "string")
    assert set_field(gateway(), text, "x" * 25).raw == "4;2;1;0;47;" + "x" * 25
    assert error_field(set_field, gateway(), text, "x" * 26) == "payload"
    assert error_field(set_field, gateway(), text, "a;b") == "payload"  # a serial gateway ends the payload at ';'
    mqtt = Gateway(id="gw", provider={"type": "mysensors_v2", "protocol": {"type": "mqtt"}}).record()
    position = set_field(mqtt, field("V_POSITION", "geo"), "52.5;13.4;34")
    assert position.raw == "4;2;1;0;49;52.5;13.4;34"


@pytest.mark.parametrize(("action", "line"), [("reboot", "4;255;3;0;13;"), ("heartbeat_request", "4;255;3;0;18;"),
                                              ("refresh_node_info", "4;255;3;0;19;"), ("reset", "4;255;3;0;13;")])
def test_mysensors_node_actions(action: str, line: str) -> None:
    downlink = node_action(gateway(), node(), action)
    assert (downlink.raw, downlink.node_id, downlink.key) == (line, "4", f"4;255;{line.split(';')[4]}")


def test_reset_flags_the_node_for_an_eeprom_erase_without_touching_the_original() -> None:
    original = node()
    flagged = reset_node_labels(original)
    assert flagged["labels"] == {"room": "attic", "ms_erase_eeprom": "true"}
    assert original["labels"] == {"room": "attic"}


def test_mysensors_discover_is_a_broadcast() -> None:
    downlink = gateway_action(gateway(), "discover_nodes")
    assert (downlink.raw, downlink.node_id, downlink.key) == ("255;255;3;0;20;", "255", "255;255;20")


def test_unknown_actions_name_the_action() -> None:
    assert error_field(node_action, gateway(), node(), "self_destruct") == "action"
    assert error_field(gateway_action, gateway(), "reboot") == "action"


# --------------------------------------------------------------------------------------------- other providers


def test_tasmota_set_and_node_actions() -> None:
    tasmota = gateway("tasmota")
    power = set_field(tasmota, field("POWER", "binary", node="plug1", source="Control"), "on")
    assert (power.topic, power.raw, power.node_id, power.key) == ("cmnd/plug1/POWER", "ON", "plug1", "plug1;POWER")
    dimmer = set_field(tasmota, field("Dimmer", "gauge", node="plug1", source="Control"), "40")
    assert (dimmer.topic, dimmer.raw) == ("cmnd/plug1/Dimmer", "40")
    expected = {"heartbeat_request": ("STATUS", "1"), "reboot": ("Restart", "1"),
                "refresh_node_info": ("STATUS", "0"), "reset": ("Reset", "6")}
    for action, (command, payload) in expected.items():
        downlink = node_action(tasmota, node("plug1"), action)
        assert (downlink.topic, downlink.raw) == (f"cmnd/plug1/{command}", payload)
    assert error_field(gateway_action, tasmota, "discover_nodes") == "action"
    assert error_field(set_field, tasmota, {**field("POWER", "binary"), "nodeId": "a+b"}, "on") == "nodeId"


def test_mc_json_set_is_a_json_object() -> None:
    downlink = set_field(gateway("mc_json"), field("setpoint", "gauge_float", node="hvac", source="zone1"), "19.5")
    assert json.loads(downlink.raw) == {"n": "hvac", "s": "zone1", "f": "setpoint", "v": 19.5}
    assert downlink.provider == "mc_json" and downlink.node_id == "hvac"
    assert error_field(node_action, gateway("mc_json"), node(), "reboot") == "action"


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(ActionError, match="takes no actions"):
        set_field(gateway("zwave_js"), field(), "on")
    assert provider_of(gateway("MySensors")) == "mysensors_v2"
    assert error_field(provider_of, {"id": "gw"}) == "provider"
