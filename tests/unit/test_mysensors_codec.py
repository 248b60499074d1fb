"""MySensors 2.x protocol tables and wire codec: real gateway traffic, malformed input, MQTT, payload encoding."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path

import pytest

from chalicelib.core.model import MetricType
from chalicelib.core.providers import mysensors
from mycontroller_protocol.mysensors import codec, protocol
from mycontroller_protocol.mysensors.codec import (
    CodecError,
    MySensorsMessage,
    decode_line,
    decode_mqtt,
    encode_line,
    encode_mqtt,
    encode_value,
    line_to_mqtt,
    mqtt_to_line,
)
from mycontroller_protocol.mysensors.protocol import (
    VALUE_METRIC,
    Command,
    Internal,
    Sensor,
    Stream,
    Value,
    internal_id,
    internal_name,
    sensor_id,
    sensor_name,
    stream_id,
    stream_name,
    type_name,
    value_id,
    value_name,
)

_LOG = "TSF:MSG:READ,12-12-0,s=1,c=1,t=0,pt=7,l=5,sg=0:23.5"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysensors_traffic.json"

# ------------------------------------------------------------------------------------------- protocol tables


def test_enum_numbering_follows_mymessage_h() -> None:
    assert [int(c) for c in Command] == [0, 1, 2, 3, 4]
    assert sorted(int(s) for s in Sensor) == list(range(40))
    assert sorted(int(v) for v in Value) == list(range(57))
    assert sorted(int(i) for i in Internal) == list(range(34))
    assert sorted(int(s) for s in Stream) == list(range(6))
    # the places that are easy to get wrong
    assert (Sensor.S_ARDUINO_NODE, Sensor.S_ARDUINO_REPEATER_NODE, Sensor.S_CUSTOM) == (17, 18, 23)
    assert (Sensor.S_COLOR_SENSOR, Sensor.S_MULTIMETER, Sensor.S_INFO) == (28, 30, 36)
    assert (Sensor.S_GAS, Sensor.S_GPS, Sensor.S_WATER_QUALITY) == (37, 38, 39)
    assert (Value.V_CUSTOM, Value.V_POSITION, Value.V_IR_RECORD, Value.V_POWER_FACTOR) == (48, 49, 50, 56)
    assert (Value.V_HVAC_FLOW_STATE, Value.V_HVAC_SPEED, Value.V_LIGHT_LEVEL, Value.V_VAR1) == (21, 22, 23, 24)
    assert (Internal.I_HEARTBEAT_RESPONSE, Internal.I_DEBUG, Internal.I_POST_SLEEP_NOTIFICATION) == (22, 28, 33)
    assert (Stream.ST_FIRMWARE_RESPONSE, Stream.ST_IMAGE) == (3, 5)


@pytest.mark.parametrize(
    ("enum", "to_name", "to_id"),
    [(Sensor, sensor_name, sensor_id), (Value, value_name, value_id), (Internal, internal_name, internal_id),
     (Stream, stream_name, stream_id)],
)
def test_every_type_round_trips_by_name_and_id(enum: type[IntEnum], to_name: Callable[[int], str],
                                               to_id: Callable[[str], int]) -> None:
    for member in enum:
        assert to_name(int(member)) == member.name
        assert to_id(member.name) == int(member)
        assert to_id(member.name.lower()) == int(member)
        assert to_id(f"  {member.name}\n") == int(member)


def test_deprecated_aliases_resolve_by_name() -> None:
    assert value_id("V_LIGHT") == Value.V_STATUS == 2
    assert value_id("v_dimmer") == Value.V_PERCENTAGE == 3
    assert value_id("V_HEATER") == Value.V_HVAC_FLOW_STATE == 21
    assert sensor_id("S_LIGHT") == Sensor.S_BINARY == 3
    # the canonical name wins when going from id to name
    assert value_name(2) == "V_STATUS"
    assert sensor_name(3) == "S_BINARY"


@pytest.mark.parametrize("lookup", [value_id, sensor_id, internal_id, stream_id])
@pytest.mark.parametrize("name", ["V_NOPE", "", "17", "TEMP", "S_", "I_TIMEX"])
def test_unknown_names_raise_key_error(lookup: Callable[[str], int], name: str) -> None:
    with pytest.raises(KeyError, match="unknown MySensors"):
        lookup(name)


def test_non_text_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        value_id(17)  # type: ignore[arg-type]


def test_unknown_ids_get_names() -> None:
    assert value_name(57) == "V_CUSTOM"  # as the reference does: a field id is always a V_ name
    assert value_name(255) == "V_CUSTOM"
    assert sensor_name(40) == "S_UNKNOWN_40"
    assert internal_name(99) == "I_UNKNOWN_99"
    assert stream_name(6) == "ST_UNKNOWN_6"


def test_type_name_picks_the_enum_of_the_command() -> None:
    assert type_name(Command.PRESENTATION, 6) == "S_TEMP"
    assert type_name(Command.SET, 0) == "V_TEMP"
    assert type_name(Command.REQ, 2) == "V_STATUS"
    assert type_name(Command.INTERNAL, 0) == "I_BATTERY_LEVEL"
    assert type_name(Command.STREAM, 2) == "ST_FIRMWARE_REQUEST"
    with pytest.raises(ValueError, match="0-4"):
        type_name(5, 0)


def test_special_ids() -> None:
    assert (protocol.BROADCAST, protocol.GATEWAY_NODE, protocol.INTERNAL_CHILD) == (255, 0, 255)


def test_value_metric_covers_every_value_type_with_model_metric_types() -> None:
    assert set(VALUE_METRIC) == {int(v) for v in Value}
    known = {str(m) for m in MetricType}
    for type_id, (metric_type, unit) in VALUE_METRIC.items():
        assert metric_type in known, value_name(type_id)
        assert isinstance(unit, str)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("V_TEMP", ("gauge_float", "°C")), ("V_HUM", ("gauge_float", "%")), ("V_STATUS", ("binary", "")),
     ("V_PERCENTAGE", ("gauge", "%")), ("V_ARMED", ("binary", "")), ("V_TRIPPED", ("binary", "")),
     ("V_LOCK_STATUS", ("binary", "")), ("V_WATT", ("gauge_float", "W")), ("V_KWH", ("gauge_float", "kWh")),
     ("V_VOLTAGE", ("gauge_float", "V")), ("V_CURRENT", ("gauge_float", "A")), ("V_LEVEL", ("gauge_float", "")),
     ("V_POSITION", ("geo", "")), ("V_RGB", ("string", "")), ("V_RGBW", ("string", "")),
     ("V_TEXT", ("string", "")), ("V_IR_SEND", ("string", "")), ("V_CUSTOM", ("string", "")),
     ("V_VAR1", ("string", "")), ("V_VAR5", ("string", "")), ("V_FORECAST", ("string", "")),
     ("V_HVAC_FLOW_STATE", ("string", "")), ("V_PH", ("gauge_float", "pH")), ("V_EC", ("gauge_float", "µS/cm")),
     ("V_VA", ("gauge_float", "VA")), ("V_VAR", ("gauge_float", "var")), ("V_VOLUME", ("counter", "m³"))],
)
def test_value_metric_defaults(name: str, expected: tuple[str, str]) -> None:
    assert VALUE_METRIC[value_id(name)] == expected


def test_package_re_exports_the_public_names() -> None:
    """``__all__`` names each of the codec's and the protocol tables' public objects once, as the very objects
    (no stale copy, nothing shadowed), ``import *`` gives exactly those, and they work from the package alone."""
    assert len(set(mysensors.__all__)) == len(mysensors.__all__)
    for name in mysensors.__all__:
        homes = [module for module in (codec, protocol) if name in vars(module)]
        assert homes, f"{name} is defined neither in codec nor in protocol"
        assert all(getattr(mysensors, name) is vars(home)[name] for home in homes), name
    namespace: dict[str, object] = {}
    exec(f"from {mysensors.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(mysensors.__all__)

    message = mysensors.decode_line("12;1;1;0;0;23.5")
    assert (message.node_id, message.command, mysensors.value_name(message.type)) == (12, mysensors.Command.SET,
                                                                                     "V_TEMP")
    assert mysensors.VALUE_METRIC[message.type] == ("gauge_float", "°C")
    assert mysensors.encode_line(message) == "12;1;1;0;0;23.5\n"


# ------------------------------------------------------------------------------------------- decode_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0;255;3;0;14;Gateway startup complete.", (0, 255, Command.INTERNAL, False, Internal.I_GATEWAY_READY,
                                                    "Gateway startup complete.")),
        ("12;255;0;0;17;2.3.2", (12, 255, Command.PRESENTATION, False, Sensor.S_ARDUINO_NODE, "2.3.2")),
        ("12;255;0;0;18;2.3.2\n", (12, 255, Command.PRESENTATION, False, Sensor.S_ARDUINO_REPEATER_NODE, "2.3.2")),
        ("12;1;0;0;6;Outdoor temp", (12, 1, Command.PRESENTATION, False, Sensor.S_TEMP, "Outdoor temp")),
        ("12;1;1;0;0;23.5", (12, 1, Command.SET, False, Value.V_TEMP, "23.5")),
        ("12;1;1;1;0;23.5\r\n", (12, 1, Command.SET, True, Value.V_TEMP, "23.5")),
        ("12;3;2;0;2;", (12, 3, Command.REQ, False, Value.V_STATUS, "")),
        ("12;255;3;0;0;87", (12, 255, Command.INTERNAL, False, Internal.I_BATTERY_LEVEL, "87")),
        ("12;255;3;0;32;500", (12, 255, Command.INTERNAL, False, Internal.I_PRE_SLEEP_NOTIFICATION, "500")),
        ("255;255;3;0;3;", (255, 255, Command.INTERNAL, False, Internal.I_ID_REQUEST, "")),
        ("12;255;3;0;1;", (12, 255, Command.INTERNAL, False, Internal.I_TIME, "")),
        ("0;0;3;0;9;" + _LOG, (0, 0, Command.INTERNAL, False, Internal.I_LOG_MESSAGE, _LOG)),
        ("7;4;1;0;49;55.722526;13.017972;18", (7, 4, Command.SET, False, Value.V_POSITION, "55.722526;13.017972;18")),
        ("7;4;1;0;47;a;b;;c", (7, 4, Command.SET, False, Value.V_TEXT, "a;b;;c")),
        ("5;255;4;0;2;010001000200", (5, 255, Command.STREAM, False, Stream.ST_FIRMWARE_REQUEST, "010001000200")),
        ("5;2;1;0;200;x", (5, 2, Command.SET, False, 200, "x")),  # unknown V_ ids are kept (V_CUSTOM upstream)
        ("5;2;1;0;3;café 20 °C", (5, 2, Command.SET, False, Value.V_PERCENTAGE, "café 20 °C")),
    ],
)
def test_decode_real_traffic_field_by_field(line: str, expected: tuple[int, int, int, bool, int, str]) -> None:
    msg = decode_line(line)
    assert type(msg) is MySensorsMessage
    assert (msg.node_id, msg.child_id, msg.command, msg.ack, msg.type, msg.payload) == expected
    assert msg == MySensorsMessage(*expected)
    assert hash(msg) == hash(MySensorsMessage(*expected))


def test_decoded_messages_are_frozen() -> None:
    msg = decode_line("12;1;1;0;0;23.5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.payload = "24"  # type: ignore[misc]
    assert dataclasses.replace(msg, payload="24").payload == "24"
    assert repr(msg) == "MySensorsMessage(node_id=12, child_id=1, command=1, ack=False, type=0, payload='23.5')"


def test_fixture_traffic_decodes_and_round_trips() -> None:
    lines = json.loads(FIXTURE.read_text(encoding="utf-8"))["lines"]
    assert lines
    for line in lines:
        msg = decode_line(line)
        assert encode_line(msg) == line + "\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "expected 6 ';'-separated fields (node;child;command;ack;type;payload), got 1"),
        ("12;1;1", "expected 6 ';'-separated fields (node;child;command;ack;type;payload), got 3"),
        ("12;1;1;0;0", "expected 6 ';'-separated fields (node;child;command;ack;type;payload), got 5"),
        ("256;1;1;0;0;1", "node id 256 is out of range 0-255"),
        ("-1;1;1;0;0;1", "node id -1 is negative, must be 0-255"),
        ("x;1;1;0;0;1", "node id 'x' is not an integer"),
        (";1;1;0;0;1", "node id is empty"),
        ("012;1;1;0;0;1", "node id '012' has leading zeros"),
        (" 12;1;1;0;0;1", "node id ' 12' is not an integer"),
        ("12;1.5;1;0;0;1", "child sensor id '1.5' is not an integer"),
        ("12;999;1;0;0;1", "child sensor id 999 is out of range 0-255"),
        ("12;1;9;0;0;1", "field 'command' is 9, must be 0-4 (presentation, set, req, internal, stream)"),
        ("12;1;7;0;0;1", "field 'command' is 7, must be 0-4 (presentation, set, req, internal, stream)"),
        ("12;1;set;0;0;1", "field 'command' 'set' is not an integer 0-4"),
        ("12;1;1;2;0;1", "field 'ack' is '2', must be 0 or 1"),
        ("12;1;1;;0;1", "field 'ack' is '', must be 0 or 1"),
        ("12;255;3;0;99;1", "type 99 is not a valid internal (I_) type"),
        ("12;1;0;0;40;x", "type 40 is not a valid presentation (S_) type"),
        ("12;255;4;0;6;00", "type 6 is not a valid stream (ST_) type"),
        ("12;1;1;0;256;1", "type 256 is out of range 0-255"),
        ("12;1;1;0;V_TEMP;1", "type 'V_TEMP' is not an integer"),
        ("12;1;1;0;0;23\x005", "payload holds the control character '\\x00'"),
        ("12;1;1;0;0;a\tb", "payload holds the control character '\\t'"),
        ("12;1;1;0;0;a\nb", "payload holds the control character '\\n'"),
        ("12;1;1;0;0;" + "x" * 257, "payload is 257 characters, longer than 256"),
    ],
)
def test_malformed_lines_say_what_is_wrong(line: str, reason: str) -> None:
    with pytest.raises(CodecError) as caught:
        decode_line(line)
    assert caught.value.reason == reason
    assert caught.value.raw == line
    assert reason in str(caught.value)


def test_payload_of_exactly_256_characters_is_accepted() -> None:
    assert decode_line("0;0;3;0;9;" + "y" * 256).payload == "y" * 256


def test_ten_kilobyte_line_is_rejected_and_shown_truncated() -> None:
    line = "0;0;3;0;9;" + "z" * 10_000
    with pytest.raises(CodecError) as caught:
        decode_line(line)
    assert caught.value.reason == f"line is {len(line)} characters, longer than any MySensors message (274)"
    assert caught.value.raw == line  # kept whole for the dead-letter queue...
    assert len(str(caught.value)) < len(caught.value.reason) + 100  # ...but shown truncated
    assert "..." in str(caught.value)


@pytest.mark.parametrize("garbage", ["\x00\x01\x02\xff", "\ufffd\ufffd;\ufffd", ";;;;;", ";;;;;;;;", "\n", "\r\n"])
def test_binary_garbage_is_a_codec_error(garbage: str) -> None:
    with pytest.raises(CodecError):
        decode_line(garbage)


@pytest.mark.parametrize("value", [b"12;1;1;0;0;23.5", None, 12, ["12", "1"]])
def test_non_text_input_is_a_codec_error(value: object) -> None:
    with pytest.raises(CodecError, match="must be text"):
        decode_line(value)  # type: ignore[arg-type]


def test_codec_error_is_a_value_error_with_reason_and_raw() -> None:
    error = CodecError("node id 'x' is not an integer", "x;1;1;0;0;1")
    assert isinstance(error, ValueError)
    assert str(error) == "node id 'x' is not an integer (in 'x;1;1;0;0;1')"
    assert str(CodecError("bad")) == "bad"
    assert CodecError("bad", b"\x00").raw == "b'\\x00'"


# ------------------------------------------------------------------------------------------- encode_line


def test_encode_line() -> None:
    assert encode_line(MySensorsMessage(12, 1, 1, False, 0, "23.5")) == "12;1;1;0;0;23.5\n"
    assert encode_line(MySensorsMessage(255, 255, 3, True, 4, "13")) == "255;255;3;1;4;13\n"
    assert encode_line(MySensorsMessage(12, 255, 3, False, 13)) == "12;255;3;0;13;\n"
    assert encode_line(MySensorsMessage(7, 4, 1, False, 49, "55.7;13.0;18")) == "7;4;1;0;49;55.7;13.0;18\n"


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (MySensorsMessage(256, 1, 1, False, 0, "1"), "node id 256 is not an integer 0-255"),
        (MySensorsMessage(-1, 1, 1, False, 0, "1"), "node id -1"),
        (MySensorsMessage(1, 300, 1, False, 0, "1"), "child sensor id 300"),
        (MySensorsMessage(1, 1, 5, False, 0, "1"), "field 'command' is 5, must be 0-4"),
        (MySensorsMessage(1, 1, 3, False, 50, "1"), "type 50 is not a valid internal"),
        (MySensorsMessage(1, 1, 1, False, 0, "a\nb"), "control character"),
        (MySensorsMessage(1, 1, 1, False, 0, "x" * 300), "300 characters"),
        (MySensorsMessage("1", 1, 1, False, 0, "1"), "node id '1'"),  # type: ignore[arg-type]
        (MySensorsMessage(1, 1, 1, False, 0, 5), "payload must be text"),  # type: ignore[arg-type]
    ],
)
def test_encode_line_refuses_what_could_not_be_read_back(message: MySensorsMessage, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        encode_line(message)


# ------------------------------------------------------------------------------------------- MQTT


@pytest.mark.parametrize(
    ("topic", "prefix"),
    [
        ("mygateway1-out/12/1/1/0/0", "mygateway1-out"),
        ("mygateway1-out/12/1/1/0/0", "mygateway1-out/"),
        ("home/ms-out/12/1/1/0/0", "home/ms-out"),
        ("a/b/c/d/12/1/1/0/0", "a/b/c/d"),
        ("home/ms-out/12/1/1/0/0", None),
        ("12/1/1/0/0", None),
    ],
)
def test_decode_mqtt_with_prefixes(topic: str, prefix: str | None) -> None:
    assert decode_mqtt(topic, "23.5", prefix) == MySensorsMessage(12, 1, 1, False, 0, "23.5")
    assert decode_mqtt(topic, b"23.5", prefix) == MySensorsMessage(12, 1, 1, False, 0, "23.5")


def test_decode_mqtt_payload_keeps_semicolons_and_text() -> None:
    msg = decode_mqtt("gw/out/7/4/1/0/49", b"55.722526;13.017972;18\n", "gw/out")
    assert (msg.type, msg.payload) == (Value.V_POSITION, "55.722526;13.017972;18")
    assert decode_mqtt("gw/out/0/255/3/0/14", "Gateway startup complete.").payload == "Gateway startup complete."


@pytest.mark.parametrize(
    ("topic", "payload", "prefix", "match"),
    [
        ("other/12/1/1/0/0", "1", "mygateway1-out", "does not start with the prefix 'mygateway1-out'"),
        ("mygateway1-out/12/1/1/0", "1", "mygateway1-out", "got 4 segments"),
        ("mygateway1-out/12/1/1/0/0/9", "1", "mygateway1-out", "got 6 segments"),
        ("1/1/0/0", "1", None, "got 4 segments"),
        ("gw/12/1/9/0/0", "1", None, "field 'command' is 9"),
        ("gw/12/1/3/0/77", "1", None, "type 77 is not a valid internal"),
        ("gw/300/1/1/0/0", "1", None, "node id 300 is out of range"),
        ("gw/12/1/1/0/0", b"\xff\xfe", None, "not UTF-8"),
        ("gw/12/1/1/0/0", "a\x00", None, "control character"),
        ("gw/12/1/1/0/0", "x" * 300, None, "300 characters"),
        (b"gw/12/1/1/0/0", "1", None, "topic must be text"),
        ("gw/12/1/1/0/0", 1, None, "payload must be text or bytes"),
    ],
)
def test_decode_mqtt_errors(topic: object, payload: object, prefix: str | None, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        decode_mqtt(topic, payload, prefix)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["mygateway1-in", "home/ms-in", "a/b/c/", "x"])
def test_mqtt_round_trip_with_multi_segment_prefixes(prefix: str) -> None:
    message = MySensorsMessage(12, 255, 3, True, 6, "M")
    topic, payload = encode_mqtt(message, prefix)
    assert topic == f"{prefix.rstrip('/')}/12/255/3/1/6"
    assert payload == "M"
    assert decode_mqtt(topic, payload, prefix) == message
    assert decode_mqtt(topic, payload.encode(), None) == message


def test_line_and_mqtt_conversions() -> None:
    assert line_to_mqtt("12;1;1;0;0;23.5\n", "home/ms-in") == ("home/ms-in/12/1/1/0/0", "23.5")
    assert mqtt_to_line("home/ms-out/12/1/1/0/0", b"23.5", "home/ms-out") == "12;1;1;0;0;23.5"
    assert mqtt_to_line("home/ms-out/7/4/1/0/49", "1.5;2.5;3") == "7;4;1;0;49;1.5;2.5;3"
    with pytest.raises(CodecError):
        line_to_mqtt("12;1;1", "x")
    with pytest.raises(CodecError):
        encode_mqtt(MySensorsMessage(12, 1, 3, False, 99, ""), "x")


# ------------------------------------------------------------------------------------------- encode_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "1"), (False, "0"), (1, "1"), (0, "0"), (2, "1"), (1.0, "1"), (0.0, "0"), ("on", "1"), ("OFF", "0"),
     ("true", "1"), ("False", "0"), (" 1 ", "1"), ("0", "0"), ("yes", "1"), ("no", "0")],
)
def test_encode_binary(value: object, expected: str) -> None:
    assert encode_value(value, "binary") == expected


@pytest.mark.parametrize("value", ["maybe", "", None, "2", float("nan")])
def test_encode_binary_refuses_non_binary(value: object) -> None:
    with pytest.raises(CodecError):
        encode_value(value, "binary")


@pytest.mark.parametrize(
    ("value", "metric_type", "expected"),
    [(23.5, "gauge_float", "23.5"), (23.0, "gauge_float", "23"), (23.50, "gauge", "23.5"), (-0.25, "gauge", "-0.25"),
     (0.1, "gauge_float", "0.1"), (1e-7, "gauge_float", "1e-07"), (1e20, "gauge_float", "1e+20"),
     (42, "gauge", "42"), (-3, "counter", "-3"), (True, "gauge", "1"), ("23.50", "gauge_float", "23.50"),
     ("Outdoor temp", "string", "Outdoor temp"), ("FF8800", "string", "FF8800"), (None, "string", ""),
     ("", "none", ""), (12, "none", "12")],
)
def test_encode_numbers_and_text(value: object, metric_type: str, expected: str) -> None:
    assert encode_value(value, metric_type) == expected


def test_encoded_floats_read_back_exactly() -> None:
    for value in (0.1 + 0.2, 1 / 3, 123456.789, -1e-300, 2.5e15):
        assert float(encode_value(value, "gauge_float")) == value


@pytest.mark.parametrize(
    ("value", "match"),
    [("a\nb", "line break"), ("a\rb", "line break"), ("a\x00", "control character"), ("x" * 257, "257 characters"),
     ("1;2", "';'"), (float("inf"), "not a finite number"), (float("nan"), "not a finite number")],
)
def test_encode_value_refuses_what_would_break_the_line(value: object, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        encode_value(value, "string")


def test_semicolons_allowed_when_not_serial() -> None:
    assert encode_value("55.7;13.0;18", "geo", serial=False) == "55.7;13.0;18"
    with pytest.raises(CodecError, match="';'"):
        encode_value("55.7;13.0;18", "geo")


def test_encoded_value_survives_a_line_round_trip() -> None:
    payload = encode_value(21.75, "gauge_float")
    line = encode_line(MySensorsMessage(12, 1, Command.SET, False, Value.V_HVAC_SETPOINT_HEAT, payload))
    assert decode_line(line).payload == "21.75"


def test_max_line_matches_the_longest_valid_line() -> None:
    valid = "255;255;1;1;255;" + "p" * codec.MAX_PAYLOAD + "\r\n"
    assert len(valid) == codec.MAX_LINE
    assert decode_line(valid).payload == "p" * codec.MAX_PAYLOAD
    with pytest.raises(CodecError, match="longer than any MySensors message"):
        decode_line(valid + "p")
