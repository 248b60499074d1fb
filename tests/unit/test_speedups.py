"""The C speed-ups (chalicelib/core/_speedups.c) against their Python twins, function by function. The processor
as a whole is held to its general path, with and without them, in test_processor_fast_path.py."""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore, _last_wins, _pack_ts, _pack_values
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core import processor as processor_module
from chalicelib.core import seen, speedups
from chalicelib.core.envelope import _GOOD_GATEWAY_IDS, MAX_RAW_BYTES, Envelope, EnvelopeError, decode_publish
from chalicelib.core.model import iso_from_ms
from chalicelib.core.ports import ListQuery, MetricPoint
from chalicelib.core.processor import Processor, _FieldGroup
from chalicelib.core.providers.mysensors.codec import MAX_PAYLOAD
from chalicelib.core.providers.mysensors.interpreter import MySensorsInterpreter

native = speedups.native
pytestmark = pytest.mark.skipif(native is None, reason="the C speed-ups are not built (make builds them)")


@contextmanager
def speedups_on(on: bool) -> Iterator[None]:
    """The C speed-ups in use (``on``) or not, for the code inside."""
    saved = speedups.native
    speedups.native = native if on else None
    try:
        yield
    finally:
        speedups.native = saved


@pytest.fixture
def pure_python() -> Iterator[None]:
    with speedups_on(False):
        yield


def test_only_plain_slots_are_bound_and_a_refused_binding_changes_nothing() -> None:
    class Odd:
        __slots__ = ("a",)
        b = property(lambda self: 1)

    for names in (("a", "b"), ("a", "c")):
        with pytest.raises(TypeError):
            native.bind_slots(native.GROUP, Odd, names)
    group = _FieldGroup("gw", "gw.1.1.V_TEMP", None)  # type: ignore[arg-type]
    assert native.group_keys({group.key: group}) == ({"gw.1"}, {"gw.1.1"}, {"gw.1.1.V_TEMP"})  # still bound


def test_the_speedups_are_what_the_build_made() -> None:
    assert speedups.describe() == "C speed-ups"


@settings(max_examples=300)
@given(ms=st.one_of(st.integers(0, 253_402_300_799_999), st.sampled_from([0, 999, 1000, 951_782_400_000])))
def test_timestamps_format_as_model_iso_from_ms(ms: int) -> None:
    assert native.iso_from_ms(ms) == iso_from_ms(ms)


@settings(max_examples=2000)
@given(text=st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                      st.integers(0, 17).flatmap(lambda places: st.decimals(allow_nan=False, allow_infinity=False,
                                                                            places=places)).map(str),
                      st.from_regex(r"-?[0-9]{0,17}(\.[0-9]{0,17})?", fullmatch=True),
                      st.text(alphabet="0123456789.-+e_ ", max_size=20)))
def test_plain_decimals_read_as_float_reads_them(text: str) -> None:
    value = native.plain_float(text)
    if value is None:
        return  # declined: float() reads it
    assert repr(value) == repr(float(text))


def test_plain_float_takes_the_forms_devices_send() -> None:
    for text in ("21.5", "-0.0", "0", "007.25", "123456789012345", "0.000000000000001", "-12.125"):
        assert repr(native.plain_float(text)) == repr(float(text))
    for text in ("", "-", "1.", ".5", "1e3", "+1", " 1", "1_0", "1234567890123456", "0.12345678901234567890123",
                 "nan", "١٢"):
        assert native.plain_float(text) is None


def test_timestamps_out_of_the_plain_range_are_declined() -> None:
    assert native.iso_from_ms(-1) is None
    assert native.iso_from_ms(253_402_300_800_000) is None


# ------------------------------------------------------------------------------------------ envelopes

def test_a_plain_publish_takes_the_c_path_and_decodes_as_python_does(pure_python: None) -> None:
    body = ('{"v":1,"e":[{"g":"gw","p":"mysensors_v2","t":5,"s":1,"i":"a","r":"1;1;1;0;0;20.5"},'
            '{"g":"gw","p":"mysensors_v2","t":6,"s":2,"i":"b","r":"1;1;1;0;0;21","o":"x/y"}]}')
    python = decode_publish(body)
    speedups.native = native
    _GOOD_GATEWAY_IDS.add("gw")
    assert native.parse_publish(body, _GOOD_GATEWAY_IDS, MAX_RAW_BYTES, 1) is not None
    assert decode_publish(body) == python
    assert python[0][1].topic == "x/y" and python[0][0].topic is None


# ------------------------------------------------------------------------------------------ routing

RAW = st.one_of(
    st.builds(lambda n, c, cmd, ack, t, p: f"{n};{c};{cmd};{ack};{t};{p}", st.integers(0, 255), st.integers(0, 255),
              st.sampled_from(["1", "2", "0", "11", " 1"]), st.sampled_from(["0", "1"]), st.integers(0, 60),
              st.one_of(st.text(max_size=8), st.just("x" * (MAX_PAYLOAD + 1)), st.just("a;b"))),
    st.text(alphabet="0123456789;.\t\n\x00é", max_size=20),
)


@settings(max_examples=400)
@given(raws=st.lists(RAW, min_size=1, max_size=8), known=st.lists(st.booleans(), min_size=8, max_size=8))
def test_route_known_takes_exactly_the_messages_route_key_routes_to_a_known_field(raws: list[str],
                                                                                  known: list[bool]) -> None:
    route_key = MySensorsInterpreter.route_key
    table: dict[str, tuple[Any, ...]] = {}
    for index, raw in enumerate(raws):
        routed = route_key(raw)
        if routed is not None and known[index]:  # routes as the processor keeps them
            table[routed[0]] = (object(), f"gw.{index}.1.V_TEMP", f"gw.{index}", f"gw.{index}.1")
    envelopes = [Envelope("gw", "mysensors_v2", 10 + i, i, f"m{i}", raw) for i, raw in enumerate(raws)]
    groups: dict[str, _FieldGroup] = {}
    stop = native.route_known(envelopes, 0, "mysensors_v2", {("gw", "mysensors_v2"): table}, groups, _FieldGroup,
                              MAX_PAYLOAD)
    expected_stop = next((i for i, raw in enumerate(raws)
                          if (routed := route_key(raw)) is None or routed[0] not in table), len(raws))
    assert stop == expected_stop
    expected: dict[str, list[tuple[int, int, str, str]]] = {}
    for i, raw in enumerate(raws[:stop]):
        head, payload = route_key(raw)  # type: ignore[misc]
        expected.setdefault(table[head][1], []).append((10 + i, i, payload, f"m{i}"))
    assert {key: group.entries for key, group in groups.items()} == expected
    for key, group in groups.items():
        assert (group.key, group.gateway_id, group.source_key, group.node_key) == (
            key, "gw", key.rpartition(".")[0], key.rpartition(".")[0].rpartition(".")[0])


def test_route_known_stops_at_another_provider_or_an_unknown_stream() -> None:
    table = {"1;1;1;0;0": (object(), "gw.1.1.V_TEMP", "gw.1", "gw.1.1")}
    envelopes = [Envelope("gw", "mysensors_v2", 1, 1, "a", "1;1;1;0;0;1"),
                 Envelope("gw", "tasmota", 2, 2, "b", "1;1;1;0;0;1"),
                 Envelope("other", "mysensors_v2", 3, 3, "c", "1;1;1;0;0;1")]
    tables = {("gw", "mysensors_v2"): table}
    groups: dict[str, _FieldGroup] = {}
    assert native.route_known(envelopes, 0, "mysensors_v2", tables, groups, _FieldGroup, MAX_PAYLOAD) == 1
    assert native.route_known(envelopes, 2, "mysensors_v2", tables, groups, _FieldGroup, MAX_PAYLOAD) == 2
    assert [e[3] for e in groups["gw.1.1.V_TEMP"].entries] == ["a"]


# ------------------------------------------------------------------------------------------ metric series


def _series(rng: random.Random) -> list[tuple[MetricPoint, list[int], list[Any]]]:
    kinds = {"gauge_float": lambda: rng.choice([rng.uniform(-5, 5), float("nan"), 3, "text"]),
             "binary": lambda: rng.choice([True, False, 1]), "gauge": lambda: rng.choice([2, 2.5, float("inf")]),
             "string": lambda: rng.choice(["on", "off"])}
    out = []
    for number in range(rng.randint(1, 6)):
        metric_type = rng.choice(list(kinds))
        point = MetricPoint(f"gw.1.{number % 3}.F", "gw", "1", str(number % 3), "F", metric_type, None, 0)
        count = rng.randint(0, 4)
        out.append((point, [1000 * number + i for i in range(count)], [kinds[metric_type]() for _ in range(count)]))
    return out


@pytest.mark.parametrize("seed", range(30))
def test_buffered_series_are_what_the_python_loop_buffers(seed: int) -> None:
    rng = random.Random(seed)
    batches = [_series(rng) for _ in range(3)]
    stores = {}
    for use_native in (True, False):
        store = EmbeddedMetricStore(":memory:", retention_days=0, max_buffered=10**9, flush_interval_s=10**9)
        with speedups_on(use_native):
            try:
                for series in batches:
                    store.write_series([(p, list(s), list(v)) for p, s, v in series])
                stores[use_native] = ({k: (list(a), [repr(x) for x in b]) for k, (a, b) in store._buffer.items()},
                                      store._buffered)
            finally:
                store.close()
    assert stores[True] == stores[False]


@settings(max_examples=400)
@given(stamps=st.lists(st.integers(-2**63, 2**63 - 1), max_size=6),
       values=st.lists(st.one_of(st.floats(), st.booleans(), st.integers(-3, 3)), max_size=6),
       ascending=st.booleans(), as_list=st.booleans())
def test_pack_chunk_packs_what_python_packs_or_declines(stamps: list[int], values: list[Any], ascending: bool,
                                                        as_list: bool) -> None:
    if ascending:
        stamps = sorted(set(stamps))
    values = values[:len(stamps)]
    held_values: Any = list(values) if as_list else array("d", values)  # a list once text came
    packed = native.pack_chunk(array("q", stamps), held_values)
    plain = (not as_list and len(stamps) == len(values) > 0 and all(a < b for a, b in pairwise(stamps)))
    if not plain:
        assert packed is None
        return
    assert _last_wins(stamps, values) == (stamps, values)  # nothing for it to do
    assert packed == (_pack_ts(stamps), _pack_values([float(v) for v in values]))
    assert all(type(part) is bytearray for part in packed)
    assert native.pack_chunk(stamps, values) is None  # lists are not what the store holds


def test_a_commit_of_plain_and_other_series_stores_what_python_stores() -> None:
    stored = {}
    for use_native in (True, False):
        store = EmbeddedMetricStore(":memory:", retention_days=0, max_buffered=10**9, flush_interval_s=10**9)
        with speedups_on(use_native):
            try:
                for start in (100, 50, 200):  # the second commit reaches back into the first: merged, not packed in C
                    store.write([MetricPoint("gw.1.1.T", "gw", "1", "1", "T", "gauge_float", start + i / 2, start + i)
                                 for i in (0, 2, 1, 3)])
                    store.write([MetricPoint("gw.1.2.S", "gw", "1", "2", "S", "binary", i % 2 == 0, start + i)
                                 for i in range(3)])
                    store.flush()
                stored[use_native] = store._conn().execute("SELECT * FROM chunks ORDER BY series, t1").fetchall()
            finally:
                store.close()
    assert stored[True] == stored[False] and len(stored[True]) >= 3


@settings(max_examples=500)
@given(stream=st.text(alphabet="ab-0é", min_size=0, max_size=4), first=st.one_of(st.integers(0, 120),
       st.integers(10**17 - 5, 10**18 + 5)), count=st.integers(1, 30), damage=st.integers(-1, 40),
       replacement=st.sampled_from(["x", "", "0", "-1", "s-01"]))
def test_consecutive_ids_are_what_the_python_check_finds(stream: str, first: int, count: int, damage: int,
                                                         replacement: str) -> None:
    ids = [f"{stream}-{seq}" for seq in range(first, first + count)]
    if 0 <= damage < count:
        ids[damage] = replacement if damage % 2 else f"{stream}-{first + damage + 1}"
    with speedups_on(False):
        expected = seen.consecutive_run(ids)
    assert native.consecutive_ids(ids) == (expected if ids[0].isascii() else None)  # C declines other text
    assert seen.consecutive_run(ids) == expected


@settings(max_examples=200)
@given(gateways=st.lists(st.sampled_from(["ga", "gb", "gc"]), max_size=12), shared=st.booleans())
def test_distinct_gateways_is_the_set_of_gateway_ids(gateways: list[str], shared: bool) -> None:
    envelopes = [Envelope(gw if shared else (gw + "!")[:-1], "mysensors_v2", i, i, f"m{i}", "1;1;1;0;0;1")
                 for i, gw in enumerate(gateways)]
    assert native.distinct_gateways(envelopes) == {e.gateway_id for e in envelopes}
    assert native.distinct_gateways([*envelopes, object()]) is None  # not all envelopes: Python does it


@settings(max_examples=200)
@given(keys=st.lists(st.tuples(st.sampled_from(["g", "h"]), st.integers(1, 3), st.integers(1, 3),
                               st.sampled_from(["V_TEMP", "V_HUM"])), unique=True, max_size=10))
def test_group_keys_are_the_ids_prefetch_reads(keys: list[tuple[str, int, int, str]]) -> None:
    groups = {f"{g}.{n}.{s}.{f}": _FieldGroup(g, f"{g}.{n}.{s}.{f}", None) for g, n, s, f in keys}  # type: ignore[arg-type]
    assert native.group_keys(groups) == ({g.node_key for g in groups.values()},
                                         {g.source_key for g in groups.values()}, set(groups))
    assert native.group_keys({"x": object()}) is None


# ------------------------------------------------------------------------------------------ the processor


def test_known_fields_are_folded_in_c_after_the_first_batch() -> None:
    repo = MemoryRepository(None)
    processor = Processor(repo, EmbeddedMetricStore(":memory:", retention_days=0))
    setup = [Envelope("gw", "mysensors_v2", i, i + 1, f"p{i}", line)
             for i, line in enumerate(["1;255;0;0;17;2.3.2", "1;1;0;0;6;temp", "1;2;0;0;3;switch"])]
    processor.acknowledge(processor.process(setup))
    calls = []
    original = processor_module._Batch._apply_group

    def counted(batch: Any, group: _FieldGroup) -> None:
        calls.append(group.key)
        original(batch, group)

    processor_module._Batch._apply_group = counted  # type: ignore[method-assign]
    try:
        for round_ in range(4):
            batch = [Envelope("gw", "mysensors_v2", 1000 * round_ + i, 100 * round_ + i, f"m{round_}-{i}",
                              f"1;{1 + i % 2};1;0;{0 if i % 2 == 0 else 2};{i % 2 if i % 2 else 20 + i}")
                     for i in range(6)]
            result = processor.process(batch)
            processor.acknowledge(result)
            assert not result.failures
    finally:
        processor_module._Batch._apply_group = original  # type: ignore[method-assign]
    assert calls == ["gw.1.1.V_TEMP", "gw.1.2.V_STATUS"], "only the first batch took the Python path"
    record = repo.get(processor_module.Kind.FIELD, "gw.1.1.V_TEMP")
    assert record is not None and record["current"]["value"] == 24.0
    assert record["current"]["timestamp"] == iso_from_ms(3004)


# ------------------------------------------------------------------------------------------ publishes

PLAIN_ENVELOPE = st.fixed_dictionaries(
    {"g": st.sampled_from(["gw", "gw2", "g w", ""]), "p": st.sampled_from(["mysensors_v2", "", "tasmota"]),
     "t": st.one_of(st.integers(0, 2**62), st.integers(-5, -1), st.just(10**19), st.floats(0, 5)),
     "s": st.integers(0, 2**40), "i": st.text(max_size=4),
     "r": st.one_of(st.text(max_size=12), st.just("é" * (MAX_RAW_BYTES + 1)), st.just("a" * MAX_RAW_BYTES))},
    optional={"o": st.one_of(st.none(), st.text(max_size=5), st.integers(0, 3)), "x": st.integers(0, 3)})


@st.composite
def publish_bodies(draw: st.DrawFn) -> str | bytes:
    import json
    envelopes = draw(st.lists(PLAIN_ENVELOPE, max_size=5))
    publish: dict[str, Any] = {"e": envelopes}
    if draw(st.booleans()):
        publish["v"] = draw(st.sampled_from([1, 1, 2, 1.0, "1"]))
    if draw(st.booleans()):
        publish = dict(reversed(list(publish.items())))
    text = json.dumps(publish, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
                      ensure_ascii=draw(st.booleans()))
    text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " \r\n", "x", "}"]))
    if draw(st.booleans()):  # a damaged body
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "\\", "\x01", '"', "01", "-"])) + text[cut + 1:]
    return text.encode() if draw(st.booleans()) else text


def _decoded(body: str | bytes) -> Any:
    try:
        return decode_publish(body)
    except EnvelopeError as error:
        return ("error", str(error))


@settings(max_examples=500)
@given(body=publish_bodies())
def test_a_publish_parsed_in_c_is_what_the_python_path_reads(body: str | bytes) -> None:
    _GOOD_GATEWAY_IDS.add("gw")
    parsed = native.parse_publish(body, _GOOD_GATEWAY_IDS, MAX_RAW_BYTES, 1)
    with speedups_on(False):
        expected = _decoded(body)
    if parsed is not None:
        assert (parsed, []) == expected
        assert all(type(e) is Envelope for e in parsed)
    assert _decoded(body) == expected


def test_the_edge_form_is_parsed_in_c() -> None:
    from chalicelib.core.envelope import encode_publish
    _GOOD_GATEWAY_IDS.add("gw")
    envelopes = [Envelope("gw", "mysensors_v2", 5 + i, i, f"m{i}", f"1;1;1;0;0;2{i}.5", "t/x" if i else None)
                 for i in range(3)]
    parsed = native.parse_publish(encode_publish(envelopes), _GOOD_GATEWAY_IDS, MAX_RAW_BYTES, 1)
    assert parsed == envelopes
    assert parsed[0].gateway_id is parsed[2].gateway_id, "repeated gateway ids share one str"


@settings(max_examples=200)
@given(keys=st.lists(st.tuples(st.sampled_from(["gw", "a", "b"]), st.integers(0, 3), st.integers(0, 3)),
                     max_size=8))
def test_in_order_is_true_only_for_what_the_sort_would_leave_alone(keys: list[tuple[str, int, int]]) -> None:
    envelopes = [Envelope(g, "mysensors_v2", t, s, f"m{i}", "") for i, (g, t, s) in enumerate(keys)]
    ordered = sorted(envelopes, key=lambda e: (e.gateway_id, e.timestamp, e.sequence))
    assert native.in_order(envelopes) == (ordered == envelopes)
    assert native.in_order(ordered)


# ------------------------------------------------------------------------------------------ memory repository

CURRENT = st.one_of(
    st.none(), st.just("text"),
    st.fixed_dictionaries({}, optional={"timestamp": st.one_of(st.none(), st.sampled_from(["", "2026-01-01T00:00:0"
                                                                                            "1.000Z", "2026-01-0"
                                                                                            "1T00:00:02.000Z"])),
                                        "sequence": st.one_of(st.none(), st.integers(0, 3), st.just("2"))}))


@settings(max_examples=300)
@given(pairs=st.lists(st.tuples(st.sampled_from(["gw.1.1.a", "gw.1.1.b", "gw.1.2.c"]), CURRENT), min_size=1,
                      max_size=6))
def test_put_newer_keeps_and_rejects_what_put_many_does(pairs: list[tuple[str, Any]]) -> None:
    from chalicelib.core.model import Kind
    outcomes = []
    for use_native in (True, False):
        repo = MemoryRepository(None)
        with speedups_on(use_native):
            rejected: list[Any] = []
            for field_id, current in pairs:  # one at a time and all at once
                try:
                    rejected.append(repo.put_many(Kind.FIELD, [{"id": field_id, "current": current}], if_newer=True))
                except Exception as error:
                    rejected.append(type(error).__name__)
            try:
                rejected.append(repo.put_many(Kind.FIELD, [{"id": f, "current": c} for f, c in pairs], if_newer=True))
            except Exception as error:
                rejected.append(type(error).__name__)
            stored = {r["id"]: r for r in repo.query(Kind.FIELD, ListQuery(limit=0)).data}
            outcomes.append((rejected, stored, sorted(repo.children(Kind.SOURCE, "gw.1.1"), key=repr)))
    assert outcomes[0] == outcomes[1]


@given(ids=st.lists(st.sampled_from(["a", "b", "c", "x", "y"]), max_size=8), as_generator=st.booleans())
def test_pick_is_get_many(ids: list[str], as_generator: bool) -> None:
    store = {"a": {"id": "a"}, "b": {"id": "b"}, "c": {}}
    expected = {i: store[i] for i in ids if i in store}
    got = native.pick(store, (i for i in ids) if as_generator else ids)
    assert got == expected and list(got) == list(expected)


@settings(max_examples=100)
@given(ids=st.lists(st.text(min_size=1, max_size=8), max_size=12))
def test_message_ids_are_the_envelopes_ids_in_order(ids: list[str]) -> None:
    envelopes = [Envelope("gw", "mysensors_v2", i, i, message_id, "1;1;1;0;0;1") for i, message_id in enumerate(ids)]
    assert native.message_ids(envelopes) == [e.message_id for e in envelopes]
    assert native.message_ids([*envelopes, object()]) is None  # not all envelopes: Python does it
    assert native.message_ids(tuple(envelopes)) is None
