"""Reading uplink publishes: msgspec's plain reader (core/publish_reader.py) takes what edges send and gives what the
``json`` reading of ``decode_publish`` gives; everything else falls to that reading, which names each bad envelope."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import publish_reader
from chalicelib.core.publish_reader import decode_publish
from mycontroller_protocol.envelope import MAX_RAW_BYTES, Envelope, EnvelopeError, encode_publish


def read_with_json(body: str | bytes) -> Any:
    """What ``decode_publish`` answers without the plain reader (its ``json`` reading), or the error it raises."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(publish_reader, "read_plain_publish", lambda body: None)
        try:
            return decode_publish(body)
        except EnvelopeError as error:
            return ("error", str(error))


def read(body: str | bytes) -> Any:
    try:
        return decode_publish(body)
    except EnvelopeError as error:
        return ("error", str(error))


def test_what_an_edge_sends_is_read_by_the_plain_reader() -> None:
    envelopes = [Envelope("gw-1", "mysensors_v2", 1_767_225_600_000 + i, 10 + i, f"spool-gw-1-{10 + i}",
                          f"1;{i};1;0;0;2{i}.5") for i in range(50)]
    envelopes.append(Envelope("gw-2", "tasmota", 1_767_225_700_000, 7, "x-7", '{"POWER":"ON"}', topic="stat/t/RESULT"))
    body = encode_publish(envelopes)
    assert publish_reader.read_plain_publish(body) == envelopes
    assert publish_reader.read_plain_publish(body.encode()) == envelopes
    assert decode_publish(body) == (envelopes, [])


def test_a_bad_envelope_is_named_and_the_others_are_kept() -> None:
    good = Envelope("gw", "mysensors_v2", 5, 1, "gw-1", "1;1;1;0;0;20")
    wires = [good.to_wire(), {**good.to_wire(), "t": -1}, {**good.to_wire(), "g": "a.b"},
             {**good.to_wire(), "r": "x" * (MAX_RAW_BYTES + 1)}, {**good.to_wire(), "i": "gw-2"}]
    body = json.dumps({"v": 1, "e": wires})
    assert publish_reader.read_plain_publish(body) is None
    envelopes, bad = decode_publish(body)
    assert envelopes == [good, Envelope("gw", "mysensors_v2", 5, 1, "gw-2", "1;1;1;0;0;20")]
    assert [index for index, _reason in bad] == [1, 2, 3]
    assert "timestamp" in bad[0][1] and "gateway id" in bad[1][1] and str(MAX_RAW_BYTES) in bad[2][1]


GOOD = {
    "g": st.sampled_from(["gw", "gw-2", "a:b@c~d_e", "x" * 128]),
    "p": st.sampled_from(["mysensors_v2", "tasmota", "ü"]),
    "t": st.one_of(st.integers(0, 2**41), st.sampled_from([0, 2**63 - 1, 2**64 - 1])),
    "s": st.one_of(st.integers(0, 1000), st.sampled_from([2**63 - 1, 2**64 - 1])),
    "i": st.one_of(st.text(min_size=1, max_size=8), st.just("spool-gw-12")),
    "r": st.one_of(st.text(max_size=12), st.sampled_from(["x" * MAX_RAW_BYTES, "é" * MAX_RAW_BYTES])),
}
ODD = st.sampled_from(["", "a.b", "a b", "#", "x" * 129, "\ud800", "\x00", -1, 2**64, 2**70, 1.0, 2.5, True, None,
                       [], {}, "x" * (MAX_RAW_BYTES + 1), "😀" * (MAX_RAW_BYTES + 1)])


@st.composite
def wires(draw: st.DrawFn) -> Any:
    """Mostly good envelopes; some with one key odd, missing or extra; now and then not an object at all."""
    roll = draw(st.integers(0, 19))
    if roll == 0:
        return draw(st.sampled_from([None, 1, "e", []]))
    wire = {key: draw(values) for key, values in GOOD.items()}
    if draw(st.booleans()):
        wire["o"] = draw(st.one_of(st.none(), st.text(max_size=6)))
    if roll < 4:
        wire[draw(st.sampled_from([*GOOD, "o"]))] = draw(ODD)
    elif roll < 5:
        del wire[draw(st.sampled_from(list(GOOD)))]
    elif roll < 6:
        wire["x"] = draw(ODD)
    return wire


PUBLISHES = st.fixed_dictionaries(
    {"e": st.one_of(st.lists(wires(), max_size=4), st.sampled_from([None, {}, "e"]))},
    optional={"v": st.sampled_from([1, 1, 1, 2, 1.0, True, "1", None]), "w": ODD})


@settings(max_examples=400, deadline=None)
@given(publish=PUBLISHES, ascii_only=st.booleans(), as_bytes=st.booleans(),
       damage=st.sampled_from(["", "", "", "", "nan", "duplicate", "trailing", "surrogate", "not an object"]))
def test_any_publish_reads_as_the_json_reading_reads_it(publish: dict[str, Any], ascii_only: bool, as_bytes: bool,
                                                        damage: str) -> None:
    text = json.dumps(publish, ensure_ascii=ascii_only)
    if damage == "nan":
        text = text[:-1] + ', "n": NaN}'
    elif damage == "duplicate":
        text = text[:-1] + ', "e": []}' if publish.get("e") else text
    elif damage == "trailing":
        text += " x"
    elif damage == "surrogate":
        text = text[:-1] + ', "s": "\\udc00"}'
    elif damage == "not an object":
        text = f"[{text}]"
    body: str | bytes = text
    if as_bytes:
        try:
            body = text.encode()
        except UnicodeEncodeError:  # (a lone surrogate has no UTF-8 form: the body stays text)
            pass
    assert read(body) == read_with_json(body)
