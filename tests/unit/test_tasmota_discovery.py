"""Tasmota discovery messages read by the cloud's Tasmota interpreter: names, relays, topic facts, sensors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.core.ops import FieldValue, InterpretError, NodeInfo, Op, SourceInfo
from chalicelib.core.providers.tasmota import FULL_TOPIC_KEY, TOPIC_KEY, TasmotaInterpreter
from chalicelib.core.providers.tasmota.discovery import is_discovery_topic
from mycontroller_protocol.envelope import Envelope

CONFIG: dict[str, Any] = {
    "ip": "192.168.1.47", "dn": "Kitchen Plug", "fn": ["Kettle", None, None, None, None, None, None, None],
    "hn": "kitchen-plug-1234", "mac": "a4cf12abcdef", "md": "Sonoff Basic", "sw": "13.4.0", "t": "kitchen_plug",
    "ft": "%prefix%/%topic%/", "tp": ["cmnd", "stat", "tele"], "rl": [1, 0, 0, 0, 0, 0, 0, 0], "lt_st": 0,
    "bat": 0, "dslp": 0, "ver": 1}
TOPIC = "tasmota/discovery/A4CF12ABCDEF/config"


def interpret(topic: str, payload: Any) -> list[Op]:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return TasmotaInterpreter().interpret(Envelope("tas", "tasmota", 1, 1, "m-1", raw, topic), {"id": "tas"})


def test_discovery_topics_are_recognized_and_nothing_else() -> None:
    assert is_discovery_topic(TOPIC) and is_discovery_topic("tasmota/discovery/A4CF12ABCDEF/sensors")
    for topic in ("tele/kitchen_plug/STATE", "tasmota/discovery/A4CF12ABCDEF/other", "discovery/x/config",
                  "tasmota/discovery//config"):
        assert not is_discovery_topic(topic), topic


def test_a_one_relay_config_names_the_node_and_its_power_field() -> None:
    (info,) = interpret(TOPIC, CONFIG)
    assert isinstance(info, NodeInfo) and info.node_id == "kitchen_plug" and info.name == "Kitchen Plug"
    assert info.labels == {"version": "13.4.0"}
    assert info.others == {
        TOPIC_KEY: "kitchen_plug", FULL_TOPIC_KEY: "%prefix%/%topic%/", "friendly_name": "Kettle",
        "ip_address": "192.168.1.47", "node_web_url": "http://192.168.1.47", "mac": "A4:CF:12:AB:CD:EF",
        "hostname": "kitchen-plug-1234", "module": "Sonoff Basic", "relays": {"POWER": "relay"},
        "relay_names": {"POWER": "Kettle"}, "battery_powered": False, "deep_sleep": False}


def test_relay_states_sent_with_the_config_become_named_fields() -> None:
    config = {**CONFIG, "t": "strip.2", "dn": "", "fn": ["Lamp", "", "Fan"], "rl": [1, 1, 2, 0], "lt_st": 3,
              "tp": ["cmd", "st", "tl"], "power": {"POWER1": "ON", "POWER2": "OFF", "POWER3": "ON", "POWER9": "ON"}}
    info, *values = interpret(TOPIC, config)
    assert isinstance(info, NodeInfo) and info.node_id == "strip_2" and info.name == "Lamp"
    assert info.others[TOPIC_KEY] == "strip.2" and info.others["light_type"] == "rgb"
    assert info.others["relays"] == {"POWER1": "relay", "POWER2": "relay", "POWER3": "light"}
    assert info.others["relay_names"] == {"POWER1": "Lamp", "POWER3": "Fan"}
    assert info.others["tasmota_prefixes"] == ["cmd", "st", "tl"]
    assert values == [FieldValue("strip_2", "Control", "POWER1", "ON", "binary", name="Lamp"),
                      FieldValue("strip_2", "Control", "POWER2", "OFF", "binary", name=""),
                      FieldValue("strip_2", "Control", "POWER3", "ON", "binary", name="Fan")], \
        "a POWER the config does not list is no relay of it"


def test_a_sensors_message_announces_sources_not_readings() -> None:
    ops = interpret("tasmota/discovery/A4CF12ABCDEF/sensors", {"t": "kitchen_plug", "sn": {
        "Time": "2026-07-01T10:00:00", "AM2301": {"Temperature": 22.4}, "DS18B20-1": {"Id": "01131B", "Temperature":
                                                                                      9.5},
        "TempUnit": "C", "Switch1": "ON"}, "ver": 1})
    assert ops == [SourceInfo("kitchen_plug", "AM2301"),
                   SourceInfo("kitchen_plug", "DS18B20-1", labels={"sensor_id": "01131B"})]


@pytest.mark.parametrize(("topic", "payload", "problem"), [
    (TOPIC, "not json", "payload is not JSON"),
    (TOPIC, "[1]", "must be a JSON object"),
    (TOPIC, {**CONFIG, "t": ""}, "needs the device's topic 't'"),
    ("tasmota/discovery/A4CF12ABCDEF/sensors", {"sn": {}}, "needs the device's topic 't'"),
    ("tasmota/discovery/A4CF12ABCDEF/sensors", {"t": "x", "sn": 3}, "needs 'sn', an object"),
])
def test_bad_discovery_messages_are_interpret_errors_naming_the_topic(topic: str, payload: Any, problem: str) -> None:
    with pytest.raises(InterpretError) as caught:
        interpret(topic, payload)
    assert problem in str(caught.value) and topic in str(caught.value)
