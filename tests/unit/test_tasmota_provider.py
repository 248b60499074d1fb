"""The Tasmota provider fed real Tasmota 12/13 traffic: topics, telemetry, results, status, LWT and garbage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.model import Kind, MetricType
from chalicelib.core.ops import FieldValue, InterpretError, NodeInfo, NodeSeen, NodeState, Op, SourceInfo
from chalicelib.core.ports import MetricPoint, MetricQuery
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from chalicelib.core.providers.tasmota import (
    DEFAULT_FULL_TOPIC,
    FULL_TOPIC_KEY,
    TOPIC_KEY,
    TasmotaInterpreter,
    TopicError,
    command_payload,
    command_topic,
    device_topic,
    node_command_topic,
    parse_topic,
    sanitize_id,
)
from mycontroller_protocol.envelope import Envelope
from mycontroller_protocol.ids import ID_PATTERN
from mycontroller_protocol.values import convert_value

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tasmota"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GATEWAY: dict[str, Any] = {"id": "tas", "provider": {"type": "tasmota"}}
METRIC_TYPES = frozenset(m.value for m in MetricType)
INTERPRETER = TasmotaInterpreter()


def fixture(name: str) -> tuple[str, str]:
    """(topic, raw payload) of a fixture; JSON payloads compact, as Tasmota sends them."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    payload = data["payload"]
    raw = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return data["topic"], raw


def envelope(topic: str | None, raw: str, seq: int = 1, ts: int = T0) -> Envelope:
    return Envelope("tas", "tasmota", ts, seq, f"m-{seq}", raw, topic)


def interpret(topic: str | None, raw: str) -> list[Op]:
    return INTERPRETER.interpret(envelope(topic, raw), GATEWAY)


def ops_of(name: str) -> list[Op]:
    return interpret(*fixture(name))


def fields(ops: Sequence[Op]) -> dict[str, tuple[Any, str, str]]:
    """``source.field`` → (value, metric type, unit) of every field value."""
    return {f"{op.source_id}.{op.field_id}": (op.value, op.metric_type, op.unit)
            for op in ops if isinstance(op, FieldValue)}


def node_info(ops: Sequence[Op]) -> NodeInfo:
    infos = [op for op in ops if isinstance(op, NodeInfo)]
    assert len(infos) == 1, ops
    return infos[0]


def nodes(ops: Sequence[Op]) -> set[str]:
    return {op.node_id for op in ops if hasattr(op, "node_id")}


# --------------------------------------------------------------------------------------------- topics


@pytest.mark.parametrize(("topic", "prefix", "device", "node_id", "command", "full_topic"), [
    ("tele/kitchen_plug/STATE", "tele", "kitchen_plug", "kitchen_plug", "STATE", "%prefix%/%topic%/"),
    ("stat/tasmota_1A2B3C/RESULT", "stat", "tasmota_1A2B3C", "tasmota_1A2B3C", "RESULT", "%prefix%/%topic%/"),
    ("cmnd/kitchen_plug/POWER", "cmnd", "kitchen_plug", "kitchen_plug", "POWER", "%prefix%/%topic%/"),
    ("home/tele/plug/SENSOR", "tele", "plug", "plug", "SENSOR", "home/%prefix%/%topic%/"),
    ("mytasmota/stat/tasmota_D12346/STATUS11", "stat", "tasmota_D12346", "tasmota_D12346", "STATUS11",
     "mytasmota/%prefix%/%topic%/"),
    ("garden_pump/tele/STATE", "tele", "garden_pump", "garden_pump", "STATE", "%topic%/%prefix%/"),
    ("site1/garden_pump/stat/RESULT", "stat", "garden_pump", "garden_pump", "RESULT", "site1/%topic%/%prefix%/"),
    ("tele/floor1/hall_light/STATE", "tele", "hall_light", "hall_light", "STATE", "%prefix%/floor1/%topic%/"),
    ("tele/living.room lamp/STATE", "tele", "living.room lamp", "living_room_lamp", "STATE", "%prefix%/%topic%/"),
    ("/tele/plug/lwt", "tele", "plug", "plug", "LWT", "%prefix%/%topic%/"),
    ("tele/stat/STATE", "tele", "stat", "stat", "STATE", "%prefix%/%topic%/"),
])
def test_topic_layouts_find_the_prefix_device_and_command(topic: str, prefix: str, device: str, node_id: str,
                                                          command: str, full_topic: str) -> None:
    parsed = parse_topic(topic)
    assert (parsed.prefix, parsed.device, parsed.node_id, parsed.command, parsed.full_topic) == (
        prefix, device, node_id, command, full_topic)
    assert ID_PATTERN.match(parsed.node_id)


@pytest.mark.parametrize("topic", ["tele/STATE", "", "a/b/c", "home/plug/STATE", "tele//STATE", "///"])
def test_topics_that_are_not_tasmota_are_rejected(topic: str) -> None:
    with pytest.raises(TopicError, match="Tasmota topic"):
        parse_topic(topic)


def test_sanitize_id_keeps_the_id_charset_and_replaces_the_rest() -> None:
    assert sanitize_id("tasmota_1A2B3C") == "tasmota_1A2B3C"
    assert sanitize_id("DS18B20-1") == "DS18B20-1"
    assert sanitize_id("PM2.5") == "PM2_5"
    assert sanitize_id("Küche Licht") == "K_che_Licht"
    assert sanitize_id("a:b@c~d") == "a:b@c~d"
    assert sanitize_id("plug+1/#") == "plug_1__"  # MQTT wildcards and levels never reach an id
    assert sanitize_id("") == ""
    assert len(sanitize_id("x." * 100)) == 128


# --------------------------------------------------------------------------------------------- tele/STATE


def test_state_of_a_plug_maps_control_wifi_memory_and_time() -> None:
    ops = ops_of("state_plug")
    assert nodes(ops) == {"kitchen_plug"}
    assert fields(ops) == {
        "Control.POWER": ("ON", "binary", ""),
        "WiFi.AP": (1, "gauge", ""),
        "WiFi.SSId": ("HomeNet", "string", ""),
        "WiFi.BSSId": ("3C:84:6A:11:22:33", "string", ""),
        "WiFi.Channel": (6, "gauge", ""),
        "WiFi.Mode": ("11n", "string", ""),
        "WiFi.RSSI": (84, "gauge", "%"),
        "WiFi.Signal": (-58, "gauge", "dBm"),
        "WiFi.LinkCount": (1, "counter", ""),
        "WiFi.Downtime": ("0T00:00:03", "string", ""),
        "Memory.Heap": (25, "gauge", "kB"),
        "Time.Uptime": ("1T03:25:12", "string", ""),
        "Time.UptimeSec": (98712, "counter", "s"),
        "Time.Sleep": (50, "gauge", "ms"),
        "Time.LoadAvg": (19, "gauge", ""),
    }
    info = node_info(ops)
    assert info.others == {"sleep_mode": "Dynamic", "mqtt_count": 1}
    assert info.name is None and info.labels == {}
    assert isinstance(ops[0], NodeInfo)  # node facts first, then values


def test_state_of_a_light_has_dimmer_colours_ct_and_channels() -> None:
    got = fields(ops_of("state_light"))
    assert got["Control.POWER"] == ("ON", "binary", "")
    assert got["Control.Dimmer"] == (75, "gauge", "%")
    assert got["Control.Color"] == ("BF6020C000", "string", "")
    assert got["Control.HSBColor"] == ("20,83,75", "string", "")
    assert (got["Control.HSBColor1"], got["Control.HSBColor2"], got["Control.HSBColor3"]) == (
        (20, "gauge", "°"), (83, "gauge", "%"), (75, "gauge", "%"))
    assert got["Control.White"] == (75, "gauge", "%")
    assert got["Control.CT"] == (327, "gauge", "mired")
    assert [got[f"Control.Channel{i}"][0] for i in range(1, 6)] == [75, 38, 13, 75, 0]
    assert got["Control.Fade"] == ("ON", "binary", "")
    assert got["Control.Speed"] == (2, "gauge", "")
    assert got["Control.Scheme"] == (0, "gauge", "")
    assert got["Control.LedTable"] == ("ON", "binary", "")
    assert got["WiFi.Channel"] == (11, "gauge", "")  # the radio channel, not a light channel
    assert "Control.Channel" not in got and "Control.Time" not in got


def test_state_under_an_extra_level_with_a_dotted_name_remembers_how_to_reach_the_device() -> None:
    ops = ops_of("state_esp32_4ch")
    assert nodes(ops) == {"relay-board_garage"}
    got = fields(ops)
    assert {k: v[0] for k, v in got.items() if k.startswith("Control.")} == {
        "Control.POWER1": "ON", "Control.POWER2": "OFF", "Control.POWER3": "OFF", "Control.POWER4": "ON"}
    assert all(got[f"Control.POWER{i}"][1] == "binary" for i in range(1, 5))
    assert got["Berry.HeapUsed"] == (4, "gauge", "kB")
    assert got["Berry.Objects"] == (46, "gauge", "")
    assert got["Memory.Heap"] == (142, "gauge", "kB")
    info = node_info(ops)
    assert info.others[TOPIC_KEY] == "relay-board.garage"
    assert info.others[FULL_TOPIC_KEY] == "home/%prefix%/%topic%/"
    assert info.others["mqtt_count"] == 3


def test_state_on_the_default_layout_does_not_repeat_topic_facts() -> None:
    info = node_info(ops_of("state_plug"))
    assert TOPIC_KEY not in info.others and FULL_TOPIC_KEY not in info.others


def test_uptime_telemetry_goes_to_time() -> None:
    raw = '{"Time":"2024-03-11T12:00:00","Uptime":"1T03:47:20","UptimeSec":100040}'
    ops = interpret("tele/kitchen_plug/UPTIME", raw)
    assert fields(ops) == {"Time.Uptime": ("1T03:47:20", "string", ""), "Time.UptimeSec": (100040, "counter", "s")}


# --------------------------------------------------------------------------------------------- tele/SENSOR


def test_energy_sensor_fields_have_units() -> None:
    ops = ops_of("sensor_energy")
    assert fields(ops) == {
        "ENERGY.TotalStartTime": ("2023-11-02T18:20:11", "string", ""),
        "ENERGY.Total": (152.774, "gauge_float", "kWh"),
        "ENERGY.Yesterday": (1.203, "gauge_float", "kWh"),
        "ENERGY.Today": (0.517, "gauge_float", "kWh"),
        "ENERGY.Period": (3, "gauge_float", "Wh"),
        "ENERGY.Power": (41, "gauge_float", "W"),
        "ENERGY.ApparentPower": (58, "gauge_float", "VA"),
        "ENERGY.ReactivePower": (41, "gauge_float", "VAr"),
        "ENERGY.Factor": (0.71, "gauge_float", ""),
        "ENERGY.Voltage": (231, "gauge_float", "V"),
        "ENERGY.Current": (0.251, "gauge_float", "A"),
    }
    assert not any(isinstance(op, NodeInfo) for op in ops)


def test_three_phase_arrays_become_one_field_a_phase() -> None:
    got = fields(ops_of("sensor_energy_3phase"))
    assert [got[f"ENERGY.Voltage_{i}"] for i in (1, 2, 3)] == [
        (231.4, "gauge_float", "V"), (229.8, "gauge_float", "V"), (232.1, "gauge_float", "V")]
    assert [got[f"ENERGY.Current_{i}"][0] for i in (1, 2, 3)] == [6.44, 1.75, 4.36]
    assert got["ENERGY.Power_2"] == (355, "gauge_float", "W")
    assert got["ENERGY.Factor_3"] == (0.97, "gauge_float", "")
    assert got["ENERGY.Frequency_1"] == (50, "gauge_float", "Hz")
    assert got["ENERGY.Total"] == (1834.212, "gauge_float", "kWh")
    assert "ENERGY.Voltage" not in got


def test_climate_sensors_analog_and_counter() -> None:
    ops = ops_of("sensor_climate")
    got = fields(ops)
    assert got["AM2301.Temperature"] == (21.4, "gauge_float", "°C")
    assert got["AM2301.Humidity"] == (48.7, "gauge_float", "%")
    assert got["AM2301.DewPoint"] == (10.1, "gauge_float", "°C")
    assert got["BME280.Pressure"] == (1013.4, "gauge_float", "hPa")
    assert got["BME280.SeaPressure"] == (1024.1, "gauge_float", "hPa")
    assert got["SI7021.Humidity"] == (49.3, "gauge_float", "%")
    assert got["ANALOG.A0"] == (612, "gauge", "")
    assert got["COUNTER.C1"] == (18273, "counter", "")
    assert {op.source_id for op in ops if isinstance(op, FieldValue)} == {"AM2301", "BME280", "SI7021", "ANALOG",
                                                                          "COUNTER"}
    assert len(got) == 13  # Time, TempUnit and PressureUnit are not fields


def test_ds18b20_probes_in_fahrenheit_keep_their_ids_as_source_labels() -> None:
    ops = ops_of("sensor_ds18b20_fahrenheit")
    assert fields(ops) == {
        "DS18B20-1.Temperature": (77.5, "gauge_float", "°F"),
        "DS18B20-2.Temperature": (76.8, "gauge_float", "°F"),
    }
    labels = {op.source_id: op.labels for op in ops if isinstance(op, SourceInfo)}
    assert labels == {"DS18B20-1": {"sensor_id": "01144E6A8AAA"}, "DS18B20-2": {"sensor_id": "3C01D07588A1"}}


def test_keys_with_dots_are_sanitized_and_typed_by_their_tasmota_name() -> None:
    got = fields(ops_of("sensor_pm25"))
    assert got["PMS5003.PM2_5"] == (5, "gauge_float", "µg/m³")
    assert got["PMS5003.PM10"] == (6, "gauge_float", "µg/m³")
    assert got["PMS5003.PB0_3"] == (618, "gauge_float", "")
    assert got["SCD30.CarbonDioxide"] == (612, "gauge_float", "ppm")
    assert got["SCD30.Temperature"] == (22.6, "gauge_float", "°C")
    assert all(ID_PATTERN.match(key.split(".")[1]) for key in got)


def test_nested_sensor_objects_are_flattened_and_nulls_skipped() -> None:
    raw = ('{"Time":"2024-03-11T10:00:00","TX23":{"Speed":{"Act":3.6,"Avg":2.9},"Dir":{"Card":"WSW","Deg":247.5}},'
           '"Shutter1":{"Position":40,"Direction":0,"Target":40,"Tilt":0},"AM2301":{"Temperature":null,'
           '"Humidity":null,"DewPoint":null},"Switch1":"ON","SpeedUnit":"km/h"}')
    got = fields(interpret("tele/weather/SENSOR", raw))
    assert got["TX23.Speed_Act"] == (3.6, "gauge_float", "")
    assert got["TX23.Dir_Card"] == ("WSW", "string", "")
    assert got["TX23.Dir_Deg"] == (247.5, "gauge_float", "")
    assert got["Shutter1.Position"] == (40, "gauge_float", "")
    assert got["Sensor.Switch1"] == ("ON", "binary", "")
    assert not any(key.startswith("AM2301.") for key in got)


def test_sensor_with_only_a_time_still_marks_the_node_seen() -> None:
    assert interpret("tele/plug/SENSOR", '{"Time":"2024-03-11T10:00:00"}') == [NodeSeen("plug")]


# --------------------------------------------------------------------------------------------- stat/RESULT


def test_result_of_a_switch_is_the_control_field() -> None:
    assert ops_of("result_power") == [FieldValue("kitchen_plug", "Control", "POWER", "OFF", "binary")]
    assert ops_of("result_dimmer") == [FieldValue("hall_dimmer", "Control", "Dimmer", 50, "gauge", "%")]


def test_result_of_a_light_command_gives_the_whole_light_state() -> None:
    got = fields(ops_of("result_light"))
    assert got["Control.Dimmer"] == (40, "gauge", "%")
    assert got["Control.HSBColor"] == ("22,90,40", "string", "")
    assert got["Control.HSBColor1"] == (22, "gauge", "°")
    assert [got[f"Control.Channel{i}"][0] for i in range(1, 6)] == [40, 18, 4, 0, 0]


def test_result_of_other_commands_and_events() -> None:
    assert ops_of("result_unknown_command") == [NodeSeen("kitchen_plug")]
    assert interpret("stat/plug/RESULT", '{"Restart":"Restarting"}') == [NodeSeen("plug")]
    assert fields(ops_of("result_button")) == {"Button1.Action": ("DOUBLE", "string", "")}
    assert fields(interpret("stat/plug/RESULT", '{"TelePeriod":300}')) == {
        "Control.TelePeriod": (300, "gauge_float", "")}
    assert fields(interpret("stat/plug/RESULT", '{"SetOption19":"OFF"}')) == {
        "Control.SetOption19": ("OFF", "binary", "")}
    assert fields(interpret("stat/bulb/RESULT", '{"Channel2":30}')) == {"Control.Channel2": (30, "gauge", "%")}
    assert fields(interpret("tele/bridge/RESULT", '{"RfReceived":{"Sync":10120,"Low":330,"High":980,'
                                                  '"Data":"E5D30E","RfKey":"None"}}'))["RfReceived.Data"] == (
        "E5D30E", "string", "")


def test_setoption4_results_on_the_command_topic_and_the_plain_twin() -> None:
    assert fields(interpret("stat/plug/POWER1", '{"POWER1":"ON"}')) == {"Control.POWER1": ("ON", "binary", "")}
    assert ops_of("stat_power_plain") == [NodeSeen("kitchen_plug")]


def test_command_echoes_are_ignored() -> None:
    assert ops_of("cmnd_power") == []
    assert interpret("cmnd/plug/Backlog", "not json at all; Power1 1") == []


# --------------------------------------------------------------------------------------------- LWT, INFO, STATUS


def test_lwt_online_and_offline() -> None:
    online = ops_of("lwt_online")
    assert node_info(online).others == {"lwt": "Online", TOPIC_KEY: "kitchen_plug", FULL_TOPIC_KEY: DEFAULT_FULL_TOPIC}
    assert NodeSeen("kitchen_plug") in online
    offline = ops_of("lwt_offline")
    assert node_info(offline).others["lwt"] == "Offline"
    assert not any(isinstance(op, NodeSeen) for op in offline)
    assert NodeState("kitchen_plug", "down", "MQTT last will: Offline") in offline
    assert node_info(interpret("tele/plug/LWT", " online\n")).others["lwt"] == "Online"


def test_info_messages_at_boot_describe_the_node() -> None:
    info1 = node_info(ops_of("info1"))
    assert info1.labels == {"version": "13.4.0(release-tasmota)"}
    assert info1.others["module"] == "Sonoff S31"
    assert info1.others["fallback_topic"] == "cmnd/DVES_1A2B3C_fb/"
    info2 = node_info(ops_of("info2"))
    assert info2.others["ip_address"] == "192.168.1.47"
    assert info2.others["node_web_url"] == "http://192.168.1.47"
    assert info2.others["hostname"] == "kitchen-plug-2B3C"
    assert info2.others["web_server_mode"] == "Admin"
    info3 = node_info(ops_of("info3"))
    assert (info3.others["restart_reason"], info3.others["boot_count"]) == ("Software/System restart", 37)
    legacy = node_info(ops_of("info1_legacy"))
    assert legacy.node_id == "old_sonoff"
    assert legacy.labels == {"version": "8.5.1(tasmota)"} and legacy.others["module"] == "Sonoff Basic"
    assert all(not isinstance(op, FieldValue) for op in ops_of("info1"))


def test_status0_gives_node_facts_and_the_current_values() -> None:
    ops = ops_of("status0")
    info = node_info(ops)
    assert info.name == "Kitchen Plug"
    assert info.labels == {"version": "13.4.0(release-tasmota)", "library_version": "2_7_6"}
    expected = {
        "friendly_name": "Kettle", "module_id": 41, "ip_address": "192.168.1.47",
        "node_web_url": "http://192.168.1.47", "hostname": "kitchen-plug-2B3C", "mac": "C4:5B:BE:1A:2B:3C",
        "hardware": "ESP8266EX", "restart_reason": "Software/System restart", "boot_count": 37,
        "tele_period": 300, "timezone": "+01:00", "mqtt_client": "DVES_1A2B3C", "flash_size": 4096,
        "sleep_mode": "Dynamic", TOPIC_KEY: "kitchen_plug", FULL_TOPIC_KEY: DEFAULT_FULL_TOPIC,
    }
    assert {key: info.others.get(key) for key in expected} == expected
    got = fields(ops)
    assert got["Control.POWER"] == ("ON", "binary", "")
    assert got["ENERGY.Power"] == (40, "gauge_float", "W")
    assert got["WiFi.RSSI"] == (82, "gauge", "%")
    assert got["Memory.Heap"] == (24, "gauge", "kB")
    assert not any(key.startswith(("StatusPTH", "Status")) for key in got)


def test_single_status_messages() -> None:
    firmware = node_info(ops_of("status2"))
    assert firmware.labels["version"] == "13.4.0(release-tasmota)" and firmware.others["cpu_frequency"] == 80
    network = node_info(ops_of("status5"))
    assert (network.others["ip_address"], network.others["mac"]) == ("192.168.1.47", "C4:5B:BE:1A:2B:3C")
    wired = node_info(ops_of("status5_ethernet"))
    assert wired.others["ip_address"] == "192.168.1.60"  # Wi-Fi is off (0.0.0.0): the Ethernet address counts
    assert wired.others["node_web_url"] == "http://192.168.1.60"
    assert wired.others["hostname"] == "poe-gateway-wifi"
    assert fields(ops_of("status10"))["ENERGY.Today"] == (0.519, "gauge_float", "kWh")
    assert fields(ops_of("status11"))["Control.POWER"] == ("ON", "binary", "")
    legacy = node_info(ops_of("status_legacy"))
    assert legacy.name == "Tasmota" and legacy.others["module_id"] == 1
    assert legacy.others[FULL_TOPIC_KEY] == "mytasmota/%prefix%/%topic%/"
    assert interpret("stat/plug/STATUS9", '{"StatusPTH":{"PowerDelta":[0,0,0],"PowerLow":0}}') == [
        NodeInfo("plug", others={TOPIC_KEY: "plug", FULL_TOPIC_KEY: DEFAULT_FULL_TOPIC})]


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("topic", "raw", "problem"), [
    ("tele/plug/STATE", "POWER ON", "not JSON"),
    ("tele/plug/SENSOR", '{"ENERGY":{"Total":1.2', "not JSON"),
    ("stat/plug/RESULT", '["POWER","ON"]', "must be a JSON object"),
    ("tele/plug/STATE", '"ON"', "must be a JSON object"),
    ("tele/plug/STATE", '{"POWER":["ON"]}', "POWER must be a single value"),
    ("stat/plug/RESULT", '{"Dimmer":{"value":50}}', "Dimmer must be a single value"),
    ("tele/plug/INFO1", '{"Info1":"Sonoff"}', "Info1 must be an object"),
    ("stat/plug/STATUS5", '{"StatusNET":"192.168.1.4"}', "StatusNET must be an object"),
    ("tele/plug/LWT", "Maybe", "LWT payload must be Online or Offline"),
    ("stat/plug/STATUS", "", "not JSON"),
    ("tele/plug/SENSOR", '{"X":{"Power":' + "9" * 40 + "}}", "out of range"),
    ("tele/plug/STATE", "[" * 3000 + "]" * 3000, "not JSON"),
])
def test_bad_payloads_raise_interpret_errors_naming_the_topic(topic: str, raw: str, problem: str) -> None:
    with pytest.raises(InterpretError) as error:
        interpret(topic, raw)
    message = str(error.value)
    assert problem in message
    assert f"Tasmota {topic}:" in message


def test_missing_or_foreign_topics_are_interpret_errors() -> None:
    with pytest.raises(InterpretError, match="no MQTT topic"):
        interpret(None, '{"POWER":"ON"}')
    with pytest.raises(InterpretError, match="no tele, stat or cmnd"):
        interpret("zigbee2mqtt/bridge/state", "online")
    with pytest.raises(InterpretError, match=r"^Tasmota home/tele/plug/SENSOR: payload is not JSON"):
        interpret("home/tele/plug/SENSOR", "{oops")


def test_nan_and_infinity_readings_are_skipped() -> None:
    raw = '{"AM2301":{"Temperature":NaN,"Humidity":Infinity,"DewPoint":9.1}}'
    assert fields(interpret("tele/plug/SENSOR", raw)) == {"AM2301.DewPoint": (9.1, "gauge_float", "°C")}


def test_tasmota_answers_nothing_and_assigns_no_ids() -> None:
    assert INTERPRETER.reply_value(GATEWAY, {"id": "tas.plug.Control.POWER", "current": {"value": True}}) is None
    with pytest.raises(InterpretError, match="never ask for a node id"):
        INTERPRETER.node_id_response(GATEWAY, 3)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
_COMMANDS = st.sampled_from(["STATE", "SENSOR", "RESULT", "LWT", "INFO1", "INFO2", "STATUS", "STATUS0", "STATUS8",
                             "STATUS11", "POWER", "MARGINS", "UPTIME"])


def _check_ops(ops: list[Op]) -> None:
    assert isinstance(ops, list)
    for op in ops:
        if isinstance(op, FieldValue):
            assert ID_PATTERN.match(op.node_id) and ID_PATTERN.match(op.source_id) and ID_PATTERN.match(op.field_id)
            assert op.metric_type in METRIC_TYPES
            assert not isinstance(op.value, dict | list)
        else:
            assert isinstance(op, NodeInfo | NodeSeen | SourceInfo)


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(["tele", "stat", "cmnd"]), device=st.text(min_size=1, max_size=20),
       command=_COMMANDS, payload=st.dictionaries(st.text(max_size=12), _JSON, max_size=6))
def test_any_json_object_gives_valid_operations_or_an_interpret_error(prefix: str, device: str, command: str,
                                                                      payload: dict[str, Any]) -> None:
    if "/" in device or not device.strip("/"):
        return
    raw = json.dumps(payload)
    try:
        ops = interpret(f"{prefix}/{device}/{command}", raw)
    except InterpretError as error:
        assert str(error)
        return
    _check_ops(ops)


@settings(max_examples=300, deadline=None)
@given(topic=st.text(max_size=40), raw=st.text(max_size=200))
def test_garbage_topics_and_payloads_never_escape_as_other_errors(topic: str, raw: str) -> None:
    try:
        ops = interpret(topic, raw)
    except InterpretError:
        return
    _check_ops(ops)


@settings(max_examples=200, deadline=None)
@given(command=_COMMANDS, payload=_JSON)
def test_any_json_value_on_tasmota_topics(command: str, payload: Any) -> None:
    try:
        ops = interpret(f"tele/plug/{command}", json.dumps(payload))
    except InterpretError:
        return
    _check_ops(ops)


# --------------------------------------------------------------------------------------------- commands


def test_command_topic_follows_the_full_topic() -> None:
    assert command_topic("kitchen_plug", "POWER") == "cmnd/kitchen_plug/POWER"
    assert command_topic("plug", "Dimmer", "home/%prefix%/%topic%/") == "home/cmnd/plug/Dimmer"
    assert command_topic("pump", "POWER1", "%topic%/%prefix%/") == "pump/cmnd/POWER1"
    for device, command, full_topic in (("a/b", "POWER", DEFAULT_FULL_TOPIC), ("plug", "POWER#", DEFAULT_FULL_TOPIC),
                                        ("plug", "", DEFAULT_FULL_TOPIC), ("my plug", "POWER", DEFAULT_FULL_TOPIC),
                                        ("plug", "POWER", "%hostname%/%prefix%/%topic%/"),
                                        ("plug", "POWER", "cmnd/fixed/")):
        with pytest.raises(ValueError):
            command_topic(device, command, full_topic)


def test_node_command_topic_uses_what_the_device_was_seen_to_use() -> None:
    plain = {"nodeId": "plug", "others": {}}
    assert node_command_topic(plain, "POWER") == "cmnd/plug/POWER"
    assert node_command_topic(plain, "POWER", {"provider": {"type": "tasmota", "topicPrefix": "home/"}}) == (
        "home/cmnd/plug/POWER")
    seen = {"nodeId": "relay-board_garage",
            "others": {TOPIC_KEY: "relay-board.garage", FULL_TOPIC_KEY: "home/%prefix%/%topic%/"}}
    assert device_topic(seen) == "relay-board.garage"
    assert node_command_topic(seen, "POWER2") == "home/cmnd/relay-board.garage/POWER2"


@pytest.mark.parametrize(("field_id", "value", "metric_type", "payload"), [
    ("POWER", True, "binary", "ON"),
    ("POWER1", False, "binary", "OFF"),
    ("POWER2", "on", "string", "ON"),
    ("Fade", 0, "binary", "OFF"),
    ("POWER", "toggle", "binary", "TOGGLE"),
    ("POWER", "Toggle", "binary", "TOGGLE"),
    ("Dimmer", 50, "gauge", "50"),
    ("Dimmer", 50.0, "gauge", "50"),
    ("TelePeriod", 12.5, "gauge_float", "12.5"),
    ("HSBColor", "20,83,75", "string", "20,83,75"),
    ("HSBColor", [20, 83, 75.0], "string", "20,83,75"),
    ("Color", "FF8040", "string", "FF8040"),
    ("POWER", None, "binary", ""),
    ("LedPower", True, "gauge", "1"),
])
def test_command_payload(field_id: str, value: Any, metric_type: str, payload: str) -> None:
    assert command_payload(field_id, value, metric_type) == payload


def test_command_payload_rejects_what_tasmota_cannot_read() -> None:
    with pytest.raises(ValueError, match="not a binary value"):
        command_payload("POWER", "maybe", "binary")
    with pytest.raises(ValueError, match="finite"):
        command_payload("Dimmer", float("nan"), "gauge_float")


# --------------------------------------------------------------------------------------------- through the processor


class ListMetrics:
    def __init__(self) -> None:
        self.points: list[MetricPoint] = []

    def write(self, points: Sequence[MetricPoint]) -> None:
        self.points.extend(points)

    def query(self, query: MetricQuery) -> list[dict[str, Any]]:
        return []

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_default_interpreters_include_tasmota() -> None:
    """The processor's default set routes ``tasmota`` envelopes to this interpreter: a plug's state is stored."""
    interpreters = default_interpreters()
    tasmota = interpreters["tasmota"]
    assert tasmota.provider == "tasmota"
    assert tasmota.interpret(envelope(*fixture("state_plug")), GATEWAY) == ops_of("state_plug")

    repo = MemoryRepository(None)
    result = Processor(repo, ListMetrics(), interpreters, clock=lambda: T0).process([envelope(*fixture("state_plug"))])

    assert result.failures == []
    power = repo.get(Kind.FIELD, "tas.kitchen_plug.Control.POWER")
    assert power is not None and (power["metricType"], power["current"]["value"]) == ("binary", True)


def test_a_plug_booting_and_reporting_ends_up_stored() -> None:
    names = ["lwt_online", "info1", "info2", "info3", "state_plug", "sensor_energy", "result_power", "status0",
             "cmnd_power", "stat_power_plain"]
    envelopes = [envelope(*fixture(name), seq=i + 1, ts=T0 + i * 1000) for i, name in enumerate(names)]
    repo = MemoryRepository(None)
    metrics = ListMetrics()
    processor = Processor(repo, metrics, {"tasmota": TasmotaInterpreter()}, clock=lambda: T0)
    result = processor.process(envelopes)
    assert result.failures == []

    node = repo.get(Kind.NODE, "tas.kitchen_plug")
    assert node is not None
    assert node["name"] == "Kitchen Plug"
    assert node["labels"]["version"] == "13.4.0(release-tasmota)"
    assert node["others"]["ip_address"] == "192.168.1.47"
    assert node["others"]["node_web_url"] == "http://192.168.1.47"
    assert node["others"]["lwt"] == "Online"
    assert node["state"]["status"] == "up"

    power = repo.get(Kind.FIELD, "tas.kitchen_plug.Control.POWER")
    assert power is not None
    assert power["metricType"] == "binary"
    assert power["current"]["value"] is True  # STATUS0 (ON) came after the RESULT (OFF)
    assert power["previous"]["value"] is False
    energy = repo.get(Kind.FIELD, "tas.kitchen_plug.ENERGY.Total")
    assert energy is not None and (energy["unit"], energy["current"]["value"]) == ("kWh", 152.776)
    rssi = repo.get(Kind.FIELD, "tas.kitchen_plug.WiFi.RSSI")
    assert rssi is not None and rssi["current"]["value"] == 82 and rssi["unit"] == "%"
    assert repo.get(Kind.SOURCE, "tas.kitchen_plug.ENERGY") is not None
    points = [p for p in metrics.points if p.field_id == "tas.kitchen_plug.Control.POWER"]
    assert [p.value for p in points] == [True, False, True]


CONVERTED_TYPES: dict[str, tuple[type, ...]] = {
    "gauge_float": (float,), "gauge": (int, float), "counter": (int, float), "binary": (bool,), "string": (str,),
    "geo": (str,), "none": (str, type(None))}
"""The Python type a converted value of each metric type has (what the repository stores and metrics read)."""


def test_every_fixture_converts_to_its_metric_types() -> None:
    """What the interpreter hands over must pass the processor's conversion: no field fails on real traffic, and
    conversion keeps the value (a number stays that number, a string that string) in its metric type's shape."""
    converted_fields: dict[str, int] = {}
    for path in sorted(FIXTURES.glob("*.json")):
        values = [op for op in ops_of(path.stem) if isinstance(op, FieldValue)]
        converted_fields[path.stem] = len(values)
        for op in values:
            where = f"{path.stem}: {op.source_id}.{op.field_id} = {op.value!r} ({op.metric_type})"
            assert op.metric_type in CONVERTED_TYPES, where
            value = convert_value(op.value, op.metric_type)
            assert isinstance(value, CONVERTED_TYPES[op.metric_type]), where
            assert convert_value(value, op.metric_type) == value, where  # stored, it reads back as itself
            if op.metric_type in ("gauge_float", "gauge", "counter"):
                assert value == float(op.value), where
            elif op.metric_type == "string":
                assert value == op.value, where
    # every fixture of device values gives some; commands, info, last will and status pages without values none
    carrying = {name for name, count in converted_fields.items() if count}
    assert {name for name in converted_fields if name.startswith(("sensor_", "state_"))} <= carrying
    assert {"result_power", "result_light", "status0", "status10", "status11"} <= carrying
    assert sum(converted_fields.values()) > 150


def test_last_will_offline_marks_the_node_down_and_traffic_brings_it_back() -> None:
    repo = MemoryRepository(None)
    processor = Processor(repo, ListMetrics(), {"tasmota": TasmotaInterpreter()}, clock=lambda: T0)
    state, offline = fixture("state_plug"), fixture("lwt_offline")
    # Values, then the broker's last will, in one batch: the node ends down.
    processor.process([envelope(*state, seq=1, ts=T0), envelope(*offline, seq=2, ts=T0 + 1000)])
    node = repo.get(Kind.NODE, "tas.kitchen_plug")
    assert node is not None and node["state"]["status"] == "down"
    assert node["others"]["lwt"] == "Offline"
    # Traffic after the last will brings it back up.
    processor.process([envelope(*state, seq=3, ts=T0 + 5000)])
    node = repo.get(Kind.NODE, "tas.kitchen_plug")
    assert node is not None and node["state"]["status"] == "up"
