"""Properties of the MySensors codec: whatever arrives, only CodecError escapes; valid messages round-trip."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mycontroller_protocol.mysensors.codec import (
    MAX_PAYLOAD,
    CodecError,
    MySensorsMessage,
    decode_line,
    decode_mqtt,
    encode_line,
    encode_mqtt,
    encode_value,
    mqtt_to_line,
)
from mycontroller_protocol.mysensors.protocol import Command, Internal, Sensor, Stream

_TYPES = {
    Command.PRESENTATION: sorted(int(s) for s in Sensor),
    Command.SET: list(range(256)),
    Command.REQ: list(range(256)),
    Command.INTERNAL: sorted(int(i) for i in Internal),
    Command.STREAM: sorted(int(s) for s in Stream),
}

ids = st.integers(min_value=0, max_value=255)
payloads = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    max_size=MAX_PAYLOAD,
).filter(str.isprintable)


@st.composite
def messages(draw: st.DrawFn) -> MySensorsMessage:
    command = draw(st.sampled_from(list(Command)))
    type_id = draw(st.sampled_from(_TYPES[command]))
    return MySensorsMessage(draw(ids), draw(ids), int(command), draw(st.booleans()), type_id, draw(payloads))


def _decode_or_codec_error(line: str) -> MySensorsMessage | None:
    try:
        return decode_line(line)
    except CodecError as error:
        assert error.reason
        shown = line if len(line) <= 80 else line[:77] + "..."  # the raw text is kept whole, shown truncated
        assert error.raw == line
        assert str(error) == (f"{error.reason} (in {shown!r})" if line else error.reason)
        return None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
@example("")
@example(";;;;;")
@example("1;1;1;0;0;" + "\x85")
@example("\u0661;1;1;0;0;1")  # Arabic-Indic digit: int() would take it, a gateway never writes it
def test_arbitrary_text_only_raises_codec_error(line: str) -> None:
    msg = _decode_or_codec_error(line)
    if msg is not None:  # whatever was accepted is a valid message that encodes back to the same line
        assert encode_line(msg).rstrip("\n") == line.rstrip("\r\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
@example(b"12;1;1;0;0;23.5\r\n")
@example(b"0;255;3;0;14;Gateway startup complete.\n")
@example(b"1;1;1;0;0;\xff")  # U+FFFD once decoded: a printable payload
@example(b"21.5\n")
@example(b"\xff")
def test_arbitrary_bytes_only_raise_codec_error(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    msg = _decode_or_codec_error(text)
    if msg is not None:  # a line that decodes is a valid message that encodes back to the same line
        assert encode_line(msg).rstrip("\n") == text.rstrip("\r\n")
    try:
        published = decode_mqtt("gw/1/1/1/0/0", data)
    except CodecError:
        return
    # a publish that decodes is the topic's message carrying the payload's text, and encodes back to that publish
    assert (published.node_id, published.child_id, published.command, published.ack, published.type) == (
        1, 1, int(Command.SET), False, 0)
    assert published.payload == data.decode("utf-8").rstrip("\r\n")
    assert encode_mqtt(published, "gw") == ("gw/1/1/1/0/0", published.payload)


@st.composite
def near_valid_lines(draw: st.DrawFn) -> str:
    """A valid line with one field replaced by something plausible but maybe wrong."""
    fields = encode_line(draw(messages())).rstrip("\n").split(";", 5)
    index = draw(st.integers(min_value=0, max_value=5))
    fields[index] = draw(st.one_of(
        st.integers(min_value=-300, max_value=100_000).map(str),
        st.sampled_from(["", " ", "x", "1.5", "0x1", "+1", "01", "1e3", "nan", "\x00", "\n", "\u0661", "\u00b2",
                         "255 "]),
        st.text(max_size=30),
    ))
    line = ";".join(fields)
    return line + draw(st.sampled_from(["", "\n", "\r\n", "\r", ";"]))


@settings(max_examples=300, deadline=None)
@given(near_valid_lines())
def test_near_valid_lines_only_raise_codec_error(line: str) -> None:
    msg = _decode_or_codec_error(line)
    if msg is not None:
        assert encode_line(msg).rstrip("\n") == line.rstrip("\r\n")


@settings(max_examples=300, deadline=None)
@given(messages())
def test_valid_messages_round_trip_through_the_line(message: MySensorsMessage) -> None:
    line = encode_line(message)
    assert line.endswith("\n") and line.count("\n") == 1
    decoded = decode_line(line)
    assert decoded == message
    assert type(decoded) is MySensorsMessage
    assert decode_line(line.rstrip("\n")) == message
    assert decode_line(line.rstrip("\n") + "\r\n") == message


@settings(max_examples=200, deadline=None)
@given(messages(), st.lists(st.text(alphabet="abcdefgh-_0123456789", min_size=1, max_size=8), min_size=1,
                            max_size=4).map("/".join))
def test_valid_messages_round_trip_through_mqtt(message: MySensorsMessage, prefix: str) -> None:
    topic, payload = encode_mqtt(message, prefix)
    assert decode_mqtt(topic, payload, prefix) == message
    assert decode_mqtt(topic, payload.encode("utf-8")) == message
    assert mqtt_to_line(topic, payload, prefix) + "\n" == encode_line(message)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300)),
       st.sampled_from(["none", "string", "counter", "gauge", "gauge_float", "binary", "geo"]))
def test_encode_value_gives_a_sendable_payload_or_codec_error(value: object, metric_type: str) -> None:
    try:
        payload = encode_value(value, metric_type)
    except CodecError:
        return
    assert len(payload) <= MAX_PAYLOAD and payload.isprintable() and ";" not in payload
    message = MySensorsMessage(12, 1, int(Command.SET), False, 2, payload)
    assert decode_line(encode_line(message)).payload == payload
    if metric_type == "binary":
        assert payload in ("0", "1")
    elif isinstance(value, float) and not isinstance(value, bool):
        assert math.isfinite(value) and float(payload) == value
