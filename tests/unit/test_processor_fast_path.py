"""The processor's fast path (known fields, newer values, folded a field at a time, metrics as series) against
its general path (``Processor(fast_path=False)``): the same traffic must give the same repository state, events,
downlinks, failures, counters and metric points, batch after batch."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.metrics import Series
from chalicelib.core.model import Kind, ms_from_iso
from chalicelib.core.ports import ListQuery, MetricPoint, MetricQuery
from chalicelib.core.processor import Processor, ProcessResult
from chalicelib.core.processor import batch as processor_batch
from chalicelib.core.processor import caches as processor_caches
from chalicelib.core.processor import state as processor_state
from chalicelib.core.providers.mysensors.interpreter import MySensorsInterpreter
from mycontroller_protocol.envelope import Envelope

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysensors_traffic.json"
KINDS = (Kind.GATEWAY, Kind.NODE, Kind.SOURCE, Kind.FIELD)


class PointStore:
    """Records every point; no ``write_series``, so the processor hands it points."""

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


class SeriesStore(PointStore):
    """Takes series too, and keeps them as the points they stand for."""

    def __init__(self) -> None:
        super().__init__()
        self.series_calls = 0

    def write_series(self, series: Sequence[Series]) -> None:
        self.series_calls += 1
        for template, stamps, values in series:
            self.points.extend(template._replace(value=v, timestamp_ms=t) for t, v in zip(stamps, values, strict=True))


class Lane:
    """One processor, its repository and its metric stores."""

    def __init__(self, fast: bool, store: PointStore) -> None:
        self.repo = MemoryRepository(None)
        self.store = store
        self.embedded = EmbeddedMetricStore(":memory:", retention_days=0)
        self.processor = Processor(self.repo, _Tee(store, self.embedded),
                                   {"mysensors_v2": MySensorsInterpreter(clock=lambda: 1_767_225_600)},
                                   clock=lambda: T0, fast_path=fast)

    def run(self, envelopes: list[Envelope]) -> tuple[Any, ...]:
        before = len(self.store.points)
        result = self.processor.process(list(envelopes))
        self.processor.acknowledge(result)
        points = sorted(self.store.points[before:], key=_point_key)
        return _outcome(result), points

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {kind.value: self.repo.query(kind, ListQuery(limit=0)).data for kind in KINDS}

    def stored_metrics(self) -> dict[str, list[dict[str, Any]]]:
        stored: dict[str, list[dict[str, Any]]] = {}
        for record in self.repo.query(Kind.FIELD, ListQuery(limit=0)).data:
            query = MetricQuery(field_id=record["id"], metric_type=record["metricType"], start_ms=0,
                                stop_ms=T0 * 2)
            stored[record["id"]] = self.embedded.query(query)
        return stored


class _Tee:
    """Writes to the recording store and to a real embedded store, with series if the recorder takes them."""

    def __init__(self, recorder: PointStore, embedded: EmbeddedMetricStore) -> None:
        self.recorder = recorder
        self.embedded = embedded
        if isinstance(recorder, SeriesStore):
            self.write_series = self._write_series

    def write(self, points: Sequence[MetricPoint]) -> None:
        self.recorder.write(points)
        self.embedded.write(points)

    def _write_series(self, series: Sequence[Series]) -> None:
        assert isinstance(self.recorder, SeriesStore)
        self.recorder.write_series(series)
        self.embedded.write_series(series)

    def query(self, query: MetricQuery) -> list[dict[str, Any]]:
        return self.embedded.query(query)

    def flush(self) -> None:
        self.embedded.flush()

    def close(self) -> None:
        self.embedded.close()


def _point_key(point: MetricPoint) -> tuple[str, int, str]:
    return point.field_id, point.timestamp_ms, repr(point.value)


def _outcome(result: ProcessResult) -> tuple[Any, ...]:
    return ([(e.type, e.entity_type, e.entity_id, e.entity_quick_id, e.entity) for e in result.events],
            [d.to_wire() for d in result.downlinks],
            [(f.message_id, f.gateway_id, f.reason) for f in result.failures],
            sorted(result.applied_ids), result.duplicates, result.stale, result.repo_writes, result.metric_points)


def lanes() -> list[Lane]:
    """The general path (the reference), the fast path, and the fast path into a store that takes points only."""
    return [Lane(False, PointStore()), Lane(True, SeriesStore()), Lane(True, PointStore())]


def assert_same(all_lanes: list[Lane], batches: list[list[Envelope]]) -> None:
    for number, batch in enumerate(batches):
        general, *fast = [lane.run(batch) for lane in all_lanes]
        for other in fast:
            assert other == general, f"batch {number} differs"
    general_state, *others = [lane.state() for lane in all_lanes]
    for state in others:
        assert state == general_state
    general_metrics, *stored = [lane.stored_metrics() for lane in all_lanes]
    for metrics in stored:
        assert metrics == general_metrics


def envelope(t: int, seq: int, line: str, mid: str | None = None, gateway: str = "gw") -> Envelope:
    return Envelope(gateway, "mysensors_v2", T0 + t, seq, mid or f"{gateway}-{seq}", line)


def presentations(nodes: int) -> list[str]:
    lines = []
    for node in range(1, nodes + 1):
        lines += [f"{node};255;0;0;17;2.3.2", f"{node};1;0;0;6;temp", f"{node};2;0;0;3;switch",
                  f"{node};3;0;0;13;power"]
    return lines


# ------------------------------------------------------------------------------------------ fixed traffic


def test_the_recorded_traffic_replayed_twice_gives_the_same_everything_both_ways() -> None:
    lines = json.loads(FIXTURE.read_text())["lines"]
    first = [envelope(i * 1000, i + 1, line) for i, line in enumerate(lines)]
    later = [envelope(100_000 + i * 1000, 1000 + i, line) for i, line in enumerate(lines)]
    assert_same(lanes(), [first, first, later, later[5:] + later[:5], later])


def test_bench_like_traffic_takes_the_fast_path_and_matches_the_general_one() -> None:
    rng = random.Random(3)
    setup = [envelope(i, i + 1, line) for i, line in enumerate(presentations(10))]
    batches = [setup]
    seq = 10_000
    for _ in range(12):
        batch = []
        for _ in range(120):
            seq += 1
            node = rng.randint(1, 10)
            roll = rng.random()
            if roll < 0.03:
                line = f"{node};255;3;0;0;{rng.randint(0, 100)}"
            elif roll < 0.05:
                line = f"{node};255;3;0;1;"
            elif roll < 0.5:
                line = f"{node};1;1;0;0;{rng.uniform(-10, 35):.1f}"
            elif roll < 0.7:
                line = f"{node};2;1;0;2;{rng.randint(0, 1)}"
            else:
                line = f"{node};3;1;0;17;{rng.choice(['0', '0', '12.5', '2500'])}"
            batch.append(envelope(seq * 100, seq, line))
        batches.append(batch)
    all_lanes = lanes()
    assert_same(all_lanes, batches)
    series_store = all_lanes[1].store
    assert isinstance(series_store, SeriesStore) and series_store.series_calls >= 10, "the fast path was taken"
    assert len(series_store.points) > 1200 * 0.9


def test_what_the_fast_path_declines_comes_out_the_same() -> None:
    """Stale and equal (timestamp, sequence) values, replays, bad values, binary words, a record changed behind
    the processor's back, and a field whose metric type follows the device."""
    setup = [envelope(i, i + 1, line) for i, line in enumerate(presentations(2))]
    first = [envelope(1000, 100, "1;1;1;0;0;20.5"), envelope(1000, 101, "1;2;1;0;2;1"),
             envelope(1000, 102, "1;3;1;0;17;5")]
    stale = [envelope(500, 103, "1;1;1;0;0;19.0"), envelope(2000, 104, "1;1;1;0;0;21.0"),
             envelope(2000, 104, "1;1;1;0;0;22.0", mid="same-key")]
    bad = [envelope(3000, 105, "1;1;1;0;0;hot"), envelope(3000, 106, "1;1;1;0;0;nan"),
           envelope(3001, 107, "1;1;1;0;0;23.0"), envelope(3002, 108, "1;2;1;0;2;on"),
           envelope(3003, 109, "1;2;1;0;2;maybe"), envelope(3004, 110, "1;3;1;0;17;1e999")]
    same_values = [envelope(4000, 111, "1;1;1;0;0;23.0"), envelope(4001, 112, "1;1;1;0;0;23.0"),
                   envelope(4002, 113, "1;2;1;0;2;1"), envelope(4003, 114, "1;2;1;0;2;1")]
    redelivered = first + same_values
    all_lanes = lanes()
    assert_same(all_lanes, [setup, first, stale, bad, same_values, redelivered])
    for lane in all_lanes:  # someone (the API) writes a field: the processor's knowledge of it is void
        record = lane.repo.get(Kind.FIELD, "gw.1.1.V_TEMP")
        assert record is not None
        lane.repo.put(Kind.FIELD, {**record, "labels": {"room": "attic"},
                                   "current": {**record["current"], "value": 99.0}})
    after = [envelope(5000, 115, "1;1;1;0;0;24.0"), envelope(5001, 116, "1;1;1;0;0;24.0"),
             envelope(5002, 117, "2;1;1;0;0;1.5")]
    assert_same(all_lanes, [after, [envelope(6000, 118, "1;1;1;0;0;25.0")]])


# ------------------------------------------------------------------------------------------ any traffic

LINES = st.one_of(
    st.builds(lambda n, v: f"{n};1;1;0;0;{v}", st.integers(1, 3),
              st.one_of(st.floats(-50, 50, allow_nan=False).map(lambda f: f"{f:.2f}"),
                        st.sampled_from(["", "x", "nan", "inf", "1e999", " 7 ", "1_0"]))),
    st.builds(lambda n, v: f"{n};2;1;0;2;{v}", st.integers(1, 3), st.sampled_from(["0", "1", "on", "off", "2", "?"])),
    st.builds(lambda n, v: f"{n};3;1;0;17;{v}", st.integers(1, 3), st.integers(-5, 5).map(str)),
    st.builds(lambda n, c, t: f"{n};{c};1;0;{t};1", st.integers(1, 3), st.integers(4, 6), st.sampled_from([0, 2, 47])),
    st.builds(lambda n: f"{n};255;3;0;0;50", st.integers(1, 3)),
    st.builds(lambda n: f"{n};1;2;0;0;", st.integers(1, 3)),
    st.builds(lambda n, c, s: f"{n};{c};0;0;{s};sensor", st.integers(1, 3), st.integers(1, 3),
              st.sampled_from([6, 3, 13])),
    st.just("1;1;1;0"),
)
MESSAGES = st.tuples(st.integers(0, 40), st.integers(0, 40), LINES, st.integers(0, 3))
"""(timestamp step, sequence, line, message id choice: 0 means reuse a recent id)"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(MESSAGES, min_size=1, max_size=25), min_size=1, max_size=6),
       edit=st.booleans())
def test_any_mixed_traffic_gives_the_same_everything_both_ways(batches: list[list[tuple[int, int, str, int]]],
                                                                 edit: bool) -> None:
    all_lanes = lanes()
    setup = [envelope(i, i + 1, line) for i, line in enumerate(presentations(3))]
    made: list[list[Envelope]] = [setup]
    counter = 0
    for number, batch in enumerate(batches):
        envelopes = []
        for step, seq, line, pick in batch:
            counter += 1
            mid = f"m{counter - 1}" if pick == 0 and counter > 1 else f"m{counter}"
            envelopes.append(envelope(1000 * number + step * 50, 100 + seq, line, mid=mid))
        made.append(envelopes)
    assert_same(all_lanes, made[:2])
    if edit:
        for lane in all_lanes:
            for record in lane.repo.query(Kind.FIELD, ListQuery(limit=0)).data:
                lane.repo.put(Kind.FIELD, {**record, "labels": {"ignore_unit": "true"}})
    assert_same(all_lanes, made[2:])


@pytest.mark.parametrize("values", [["1", "0", "0", "1"], ["21.5", "21.5"], ["7"]])
def test_no_change_since_follows_the_last_change_in_a_batch(values: list[str]) -> None:
    setup = [envelope(i, i + 1, line) for i, line in enumerate(presentations(1))]
    first = [envelope(1000, 50, "1;2;1;0;2;1"), envelope(1000, 51, "1;1;1;0;0;21.5")]
    batch = [envelope(2000 + i, 60 + i, f"1;{2 if v in ('0', '1') and len(values) == 4 else 1};1;0;"
                                        f"{2 if v in ('0', '1') and len(values) == 4 else 0};{v}")
             for i, v in enumerate(values)]
    assert_same(lanes(), [setup, first, batch])


def test_a_last_seen_time_is_parsed_once_even_when_the_record_is_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = MemoryRepository(None)
    processor = Processor(repo, EmbeddedMetricStore(":memory:", retention_days=0))
    lines = ["1;255;0;0;17;2.3.2", "1;1;0;0;6;temp", "1;1;1;0;0;20.5"]
    processor.acknowledge(processor.process([envelope(i, i + 1, line) for i, line in enumerate(lines)]))
    parsed: list[str] = []
    real = ms_from_iso
    for module in (processor_batch, processor_caches, processor_state):  # every parse the processor makes
        monkeypatch.setattr(module, "ms_from_iso", lambda text: (parsed.append(text), real(text))[1])
    seq = 100
    for batch in range(6):  # battery levels change the node record (a copy) every batch; lastSeen stays
        seq += 2
        processor.acknowledge(processor.process([envelope(seq * 10, seq, f"1;255;3;0;0;{50 + batch}"),
                                                 envelope(seq * 10 + 1, seq + 1, f"1;1;1;0;0;{21 + batch}")]))
    node = repo.get(Kind.NODE, "gw.1")
    assert node is not None and node["others"]["battery_level"] == 55.0
    assert len(parsed) <= 2, parsed  # the node's and the source's time once, not once per copy


def test_the_last_seen_parse_cache_follows_the_text_not_the_record() -> None:
    processor = Processor(MemoryRepository(None), EmbeddedMetricStore(":memory:", retention_days=0))
    caches = processor.caches
    record = {"id": "gw.1", "lastSeen": "2026-01-01T00:00:01.000Z"}
    assert caches.stored_ms(record, "lastSeen") == T0 + 1000
    copy = {**record, "others": {"battery_level": 50}}
    assert caches.seen_ms["gw.1"][0] is copy["lastSeen"]  # the same str: known without parsing it again
    assert caches.stored_ms(copy, "lastSeen") == T0 + 1000
    moved = {**record, "lastSeen": "2026-01-01T00:00:02.000Z"}
    assert caches.stored_ms(moved, "lastSeen") == T0 + 2000
    assert caches.seen_ms["gw.1"] == (moved["lastSeen"], T0 + 2000)
    assert caches.stored_ms({"id": "gw.2"}, "lastSeen") == 0
