"""The home's write and read levers (#17, ``docs/cost.md``): a reading that repeats the stored value is written at
most every ``UNCHANGED_VALUE_INTERVAL_S`` (announced and measured every time), and nodes and sources are read once
per ``KEEP_RECORDS_S`` by a warm ingest (written on the version read, read again on a conflict)."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.model import Kind
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from mycontroller_protocol.envelope import Envelope

T0 = 1_767_225_600_000
FIELD = "gw.1.1.V_TEMP"


class Counting(MemoryRepository):
    """The memory repository, counting the records read and written by kind (a fresh copy each read, as DynamoDB
    hands them out)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.reads: list[tuple[Kind, str]] = []
        self.writes: list[tuple[Kind, str]] = []

    def get_many_versioned(self, kind: Kind, ids: Any, *, consistent: bool = True) -> dict[str, Any]:
        ids = list(ids)
        self.reads.extend((kind, i) for i in ids)
        return {i: (dict(record), version) for i, (record, version)
                in super().get_many_versioned(kind, ids, consistent=consistent).items()}

    def put_many(self, kind: Kind, records: Any, **options: Any) -> list[str]:
        self.writes.extend((kind, r["id"]) for r in records)
        return super().put_many(kind, records, **options)

    def put(self, kind: Kind, record: Any, **options: Any) -> None:
        self.writes.append((kind, record["id"]))
        super().put(kind, record, **options)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reading(seq: int, value: str, at_ms: int, raw: str = "1;1;1;0;0;{}") -> Envelope:
    return Envelope("gw", "mysensors_v2", at_ms, seq, f"s-{seq}", raw.format(value))


def processor(repository: MemoryRepository, **options: Any) -> tuple[Processor, EmbeddedMetricStore]:
    metrics = EmbeddedMetricStore(":memory:")
    return Processor(repository, metrics, default_interpreters(), clock=lambda: T0, **options), metrics


def field_writes(repository: Counting) -> int:
    return sum(1 for kind, entity_id in repository.writes if kind is Kind.FIELD and entity_id == FIELD)


# --------------------------------------------------------------------------------------------- unchanged values


def test_a_repeated_reading_is_announced_and_measured_but_written_only_after_the_interval() -> None:
    repository = Counting()
    ingest, _ = processor(repository, unchanged_resolution_ms=300_000)
    ingest.process([reading(1, "21.5", T0)])
    assert field_writes(repository) == 1

    result = ingest.process([reading(2, "21.5", T0 + 10_000)])  # the same value, 10 s later: not written
    assert field_writes(repository) == 1
    (update,) = [e for e in result.events if e.entity_type == "field"]
    assert update.type == "updated" and update.entity["current"]["value"] == 21.5
    assert update.entity["current"]["sequence"] == 2  # announced with its own time
    stored = repository.get(Kind.FIELD, FIELD)
    assert stored is not None and stored["current"]["sequence"] == 1  # the stored time stays, at most 5 min old
    assert result.metric_points == 1  # the metric store has every reading

    ingest.process([reading(3, "22.0", T0 + 20_000)])  # a change: written at once
    assert field_writes(repository) == 2
    ingest.process([reading(4, "22.0", T0 + 20_000 + 300_000)])  # a repeat after the interval: written
    assert field_writes(repository) == 3
    stored = repository.get(Kind.FIELD, FIELD)
    assert stored is not None and stored["current"]["sequence"] == 4 and stored["previous"]["value"] == 22.0


def test_every_reading_is_written_without_the_interval() -> None:
    repository = Counting()
    ingest, _ = processor(repository)
    for seq in range(1, 4):
        ingest.process([reading(seq, "21.5", T0 + seq * 1000)])
    assert field_writes(repository) == 3


def test_a_batch_that_changes_and_comes_back_is_written() -> None:
    """21.5 → 23 → 21.5 in one batch ends on the stored value, but its change time moved: written."""
    repository = Counting()
    ingest, _ = processor(repository, unchanged_resolution_ms=300_000)
    ingest.process([reading(1, "21.5", T0)])
    ingest.process([reading(2, "23", T0 + 1000), reading(3, "21.5", T0 + 2000)])
    assert field_writes(repository) == 2
    stored = repository.get(Kind.FIELD, FIELD)
    assert stored is not None and stored["noChangeSince"] != stored["previous"]["timestamp"]


def test_a_late_redelivery_older_than_an_unwritten_reading_stays_stale() -> None:
    """What the processor announced and did not write still orders what comes later: a redelivered older reading
    (another value) does not replace it, and that very reading again is a replay (announced, not written)."""
    repository = Counting()
    ingest, _ = processor(repository, unchanged_resolution_ms=300_000)
    ingest.process([reading(1, "21.5", T0)])
    ingest.process([reading(3, "21.5", T0 + 20_000)])  # not written
    result = ingest.process([reading(2, "30", T0 + 10_000)])  # late: older than the unwritten reading
    assert result.stale == 1 and field_writes(repository) == 1
    stored = repository.get(Kind.FIELD, FIELD)
    assert stored is not None and stored["current"]["value"] == 21.5


# --------------------------------------------------------------------------------------------- kept records


def node_and_source_reads(repository: Counting) -> int:
    return sum(1 for kind, _ in repository.reads if kind in (Kind.NODE, Kind.SOURCE))


def test_a_warm_ingest_reads_nodes_and_sources_once_between_their_writes() -> None:
    repository = Counting()
    clock = Clock()
    ingest, _ = processor(repository, keep_records_s=300, monotonic=clock, last_seen_resolution_ms=300_000)
    ingest.process([reading(1, "21.5", T0)])  # creates them
    ingest.process([reading(2, "21.6", T0 + 1000)])  # reads them (after their creation)
    repository.reads.clear()
    for seq in range(3, 8):
        clock.now += 10
        ingest.process([reading(seq, f"2{seq}", T0 + seq * 10_000)])
    assert node_and_source_reads(repository) == 0
    assert sum(1 for kind, _ in repository.reads if kind is Kind.FIELD) == 5  # fields are read every batch

    clock.now += 300  # kept longer than keep_records_s: read again
    ingest.process([reading(8, "28", T0 + 80_000)])
    assert node_and_source_reads(repository) == 2


def test_a_kept_record_is_written_on_its_version_and_an_edit_made_meanwhile_survives() -> None:
    repository = Counting()
    clock = Clock()
    ingest, _ = processor(repository, keep_records_s=600, monotonic=clock, last_seen_resolution_ms=300_000)
    ingest.process([reading(1, "21.5", T0)])
    ingest.process([reading(2, "21.6", T0 + 1000)])  # node and source kept from here
    node = repository.get(Kind.NODE, "gw.1")
    assert node is not None
    repository.put(Kind.NODE, {**node, "labels": {"room": "kitchen"}})  # the console's edit: a new version
    repository.reads.clear()
    ingest.process([reading(3, "21.7", T0 + 400_000)])  # lastSeen due: written on the kept version, which fails
    stored = repository.get(Kind.NODE, "gw.1")
    assert stored is not None and stored["labels"] == {"room": "kitchen"}
    assert stored["lastSeen"] == "2026-01-01T00:06:40.000Z"  # and the batch's lastSeen is made on the edit
    assert (Kind.NODE, "gw.1") in repository.reads  # read again after the conflict

    repository.reads.clear()
    ingest.process([reading(4, "21.8", T0 + 401_000)])  # written last batch: its new version is read
    assert (Kind.NODE, "gw.1") in repository.reads


def test_records_are_read_every_batch_without_keeping() -> None:
    repository = Counting()
    ingest, _ = processor(repository)
    ingest.process([reading(1, "21.5", T0)])
    repository.reads.clear()
    ingest.process([reading(2, "21.6", T0 + 1000)])
    ingest.process([reading(3, "21.7", T0 + 2000)])
    assert node_and_source_reads(repository) == 4


# --------------------------------------------------------------------------------------------- the stack


def test_the_stack_sets_both_on_the_ingest_from_its_last_seen_interval() -> None:
    from chalicelib.bootstrap import Container
    from chalicelib.settings import Settings
    from infra.package import build_template

    variables = build_template()["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]
    assert variables["UNCHANGED_VALUE_INTERVAL_S"] == variables["KEEP_RECORDS_S"] == {"Ref": "LastSeenInterval"}
    container = Container(Settings.from_env({"STORAGE": "memory", "UNCHANGED_VALUE_INTERVAL_S": "300",
                                             "KEEP_RECORDS_S": "300"}))
    try:
        parts = container.ingest.processor
        assert (parts.unchanged_resolution_ms, parts.keep_records_s) == (300_000, 300.0)
    finally:
        container.close()
    local = Container(Settings.from_env({"STORAGE": "memory"}))
    try:  # the local stack: every reading written, every record read (API edits apply at once)
        assert (local.ingest.processor.unchanged_resolution_ms, local.ingest.processor.keep_records_s) == (0, 0.0)
    finally:
        local.close()
