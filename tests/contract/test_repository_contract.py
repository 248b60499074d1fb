"""One contract, every repository adapter: what the core may rely on, whatever stores the records."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.conflicts import update
from chalicelib.core.model import (
    FieldModel,
    Gateway,
    Kind,
    MetricType,
    Node,
    Payload,
    Record,
    Source,
    iso_from_ms,
)
from chalicelib.core.ports import ConditionFailed, Filter, ListQuery, Repository, Sort
from chalicelib.core.query import QueryError

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def gateway(gw: str, **extra: Any) -> Record:
    return Gateway(id=gw, **extra).record()


def node(gw: str, nd: str, **extra: Any) -> Record:
    return Node(gateway_id=gw, node_id=nd, **extra).record()


def source(gw: str, nd: str, src: str, **extra: Any) -> Record:
    return Source(gateway_id=gw, node_id=nd, source_id=src, **extra).record()


def field(gw: str, nd: str, src: str, fld: str, value: Any = None, ts_ms: int | None = T0, seq: int = 0,
          **extra: Any) -> Record:
    current = Payload(value=value, is_received=True, timestamp=iso_from_ms(ts_ms) if ts_ms is not None else None,
                      sequence=seq)
    return FieldModel(gateway_id=gw, node_id=nd, source_id=src, field_id=fld, current=current, **extra).record()


def ids(records: list[Record]) -> list[str]:
    return [r["id"] for r in records]


# --------------------------------------------------------------------------------------------- put / get


def test_put_then_get_returns_the_same_record_for_every_kind(repository: Repository) -> None:
    records = {
        Kind.GATEWAY: gateway("gw1", description="attic", provider={"type": "mysensors_v2"}),
        Kind.NODE: node("gw1", "4", name="Weather", labels={"Room": "attic"}, others={"battery_level": 87}),
        Kind.SOURCE: source("gw1", "4", "1", name="Temperature"),
        Kind.FIELD: field("gw1", "4", "1", "V_TEMP", 21.5, unit="°C", labels={"name": "Température"}),
        Kind.TASK: {"id": "t1", "enabled": True, "variables": {"a": [1, 2.5, None, "x"]}},
    }
    for kind, record in records.items():
        repository.put(kind, record)
    for kind, record in records.items():
        assert repository.get(kind, record["id"]) == record
    assert repository.get(Kind.FIELD, "gw1.4.1.V_HUM") is None
    assert repository.get(Kind.NODE, "gw1.4.1.V_TEMP") is None  # a field's id is not a node's


def test_put_replaces_and_kinds_do_not_collide(repository: Repository) -> None:
    repository.put(Kind.TASK, {"id": "same", "v": 1})
    repository.put(Kind.SCHEDULE, {"id": "same", "v": "schedule"})
    repository.put(Kind.TASK, {"id": "same", "v": 2})
    assert repository.get(Kind.TASK, "same") == {"id": "same", "v": 2}
    assert repository.get(Kind.SCHEDULE, "same") == {"id": "same", "v": "schedule"}


@pytest.mark.parametrize("kind, record", [
    (Kind.TASK, {"name": "no id"}),
    (Kind.TASK, {"id": ""}),
    (Kind.NODE, {"id": "gw1"}),
    (Kind.FIELD, {"id": "gw1.1.1"}),
])
def test_put_rejects_records_without_a_proper_id(repository: Repository, kind: Kind, record: Record) -> None:
    with pytest.raises(ValueError):
        repository.put(kind, record)


def test_get_many_returns_only_what_exists(repository: Repository) -> None:
    fields = [field("gw1", "1", "1", f"f{i:03d}", i) for i in range(130)]  # more than one BatchGetItem page
    assert repository.put_many(Kind.FIELD, fields) == []
    wanted = [f["id"] for f in fields[::3]] + ["gw1.1.1.missing", fields[0]["id"]]
    got = repository.get_many(Kind.FIELD, wanted)
    assert got == {f["id"]: f for f in fields[::3]}
    assert repository.get_many(Kind.FIELD, []) == {}
    assert repository.get_many(Kind.NODE, [fields[0]["id"]]) == {}


def test_put_many_unconditional_last_write_of_an_id_wins(repository: Repository) -> None:
    first = field("gw1", "1", "1", "a", 1)
    second = field("gw1", "1", "1", "a", 2, ts_ms=T0 - 1000)  # older, but unconditional
    other = field("gw1", "1", "1", "b", 3)
    assert repository.put_many(Kind.FIELD, [first, other, second]) == []
    assert repository.get(Kind.FIELD, "gw1.1.1.a") == second
    assert repository.get(Kind.FIELD, "gw1.1.1.b") == other
    assert repository.put_many(Kind.FIELD, []) == []


# --------------------------------------------------------------------------------------------- if_newer

# (stored timestamp offset ms or None, stored sequence, new timestamp offset or None, new sequence, written?)
ORDER_CASES = [
    pytest.param(0, 5, -1, 9, False, id="older timestamp"),
    pytest.param(0, 5, 0, 5, False, id="equal timestamp and sequence"),
    pytest.param(0, 5, 0, 4, False, id="equal timestamp, lower sequence"),
    pytest.param(0, 5, 0, 6, True, id="equal timestamp, higher sequence"),
    pytest.param(0, 5, 1, 0, True, id="newer timestamp, lower sequence"),
    pytest.param(0, 5, 86_400_000 * 400, 1, True, id="newer by more than a year"),
    pytest.param(None, 0, 0, 0, True, id="stored has no timestamp"),
    pytest.param(0, 0, None, 9, False, id="new has no timestamp"),
    pytest.param(None, 0, None, 0, False, id="neither has a timestamp, same sequence"),
    pytest.param(None, 0, None, 1, True, id="neither has a timestamp, higher sequence"),
]


@pytest.mark.parametrize("stored_ts, stored_seq, new_ts, new_seq, written", ORDER_CASES)
def test_put_many_if_newer_applies_only_newer_values(repository: Repository, stored_ts: int | None, stored_seq: int,
                                                     new_ts: int | None, new_seq: int, written: bool) -> None:
    stored = field("gw1", "1", "1", "t", "stored", ts_ms=None if stored_ts is None else T0 + stored_ts,
                   seq=stored_seq)
    incoming = field("gw1", "1", "1", "t", "incoming", ts_ms=None if new_ts is None else T0 + new_ts, seq=new_seq)
    repository.put(Kind.FIELD, stored)
    rejected = repository.put_many(Kind.FIELD, [incoming], if_newer=True)
    assert rejected == ([] if written else ["gw1.1.1.t"])
    assert repository.get(Kind.FIELD, "gw1.1.1.t") == (incoming if written else stored)


def test_put_many_if_newer_on_a_batch_returns_exactly_the_stale_ids(repository: Repository) -> None:
    stored = [field("gw1", "1", "1", f"f{i:02d}", i, ts_ms=T0 + 1000, seq=10) for i in range(30)]
    repository.put_many(Kind.FIELD, stored)
    incoming = []
    for i in range(30):
        offset = 2000 if i % 3 == 0 else (0 if i % 3 == 1 else -1)  # newer / equal / older
        incoming.append(field("gw1", "1", "1", f"f{i:02d}", i * 100, ts_ms=T0 + 1000 + offset, seq=10))
    incoming.append(field("gw1", "1", "1", "new", 7))  # nothing stored: written
    rejected = repository.put_many(Kind.FIELD, incoming, if_newer=True)
    assert rejected == [f"gw1.1.1.f{i:02d}" for i in range(30) if i % 3 != 0]
    now = repository.get_many(Kind.FIELD, [r["id"] for r in incoming])
    for i in range(30):
        expected = incoming[i] if i % 3 == 0 else stored[i]
        assert now[f"gw1.1.1.f{i:02d}"] == expected
    assert now["gw1.1.1.new"] == incoming[-1]


def test_put_many_if_newer_applies_repeats_of_an_id_in_order(repository: Repository) -> None:
    a1 = field("gw1", "1", "1", "a", 1, seq=1)
    a3 = field("gw1", "1", "1", "a", 3, seq=3)
    a2 = field("gw1", "1", "1", "a", 2, seq=2)
    rejected = repository.put_many(Kind.FIELD, [a1, a3, a2], if_newer=True)
    assert rejected == ["gw1.1.1.a"]  # a2 came after a3
    assert repository.get(Kind.FIELD, "gw1.1.1.a") == a3


# --------------------------------------------------------------------------------------------- versions


def test_every_write_gives_a_record_a_version_never_seen_before(repository: Repository) -> None:
    assert repository.get_versioned(Kind.TASK, "t1") == (None, 0)
    seen: list[int] = []
    repository.put(Kind.TASK, {"id": "t1", "v": 1})
    record, version = repository.get_versioned(Kind.TASK, "t1")
    assert record == {"id": "t1", "v": 1} and version > 0
    seen.append(version)
    repository.put(Kind.TASK, {"id": "t1", "v": 2})
    repository.put_many(Kind.TASK, [{"id": "t1", "v": 3}, {"id": "t2"}])
    seen += [repository.get_versioned(Kind.TASK, "t1")[1]]
    repository.put_many(Kind.FIELD, [field("gw1", "1", "1", "a", 1)], if_newer=True)
    repository.delete(Kind.TASK, ["t1"])
    assert repository.get_versioned(Kind.TASK, "t1") == (None, 0)
    repository.put(Kind.TASK, {"id": "t1", "v": 4})  # made again: not a version an old reader may hold
    seen.append(repository.get_versioned(Kind.TASK, "t1")[1])
    assert len(set(seen)) == len(seen) and 0 not in seen
    assert repository.get_many_versioned(Kind.TASK, ["t1", "t2", "t9"]) == {
        "t1": repository.get_versioned(Kind.TASK, "t1"), "t2": repository.get_versioned(Kind.TASK, "t2")}
    assert repository.get_many_versioned(Kind.FIELD, ["gw1.1.1.a"])["gw1.1.1.a"][0] == field("gw1", "1", "1", "a", 1)


def test_put_with_an_expected_version_writes_only_over_that_version(repository: Repository) -> None:
    repository.put(Kind.DASHBOARD, {"id": "d", "title": "mine"}, expected_version=0)  # create only if absent
    with pytest.raises(ConditionFailed) as failed:
        repository.put(Kind.DASHBOARD, {"id": "d", "title": "again"}, expected_version=0)
    assert failed.value.ids == ("d",)
    record, version = repository.get_versioned(Kind.DASHBOARD, "d")
    assert record == {"id": "d", "title": "mine"}
    repository.put(Kind.DASHBOARD, {"id": "d", "title": "theirs"})  # another writer, unconditional
    with pytest.raises(ConditionFailed):
        repository.put(Kind.DASHBOARD, {"id": "d", "title": "lost?"}, expected_version=version)
    assert repository.get(Kind.DASHBOARD, "d") == {"id": "d", "title": "theirs"}
    record, version = repository.get_versioned(Kind.DASHBOARD, "d")
    repository.put(Kind.DASHBOARD, {**record, "title": "mine, on theirs"}, expected_version=version)
    assert repository.get(Kind.DASHBOARD, "d") == {"id": "d", "title": "mine, on theirs"}
    with pytest.raises(ConditionFailed):  # a record gone is not the version read
        repository.delete(Kind.DASHBOARD, ["d"])
        repository.put(Kind.DASHBOARD, {"id": "d"}, expected_version=version)
    assert repository.get(Kind.DASHBOARD, "d") is None


def test_put_many_with_expected_versions_writes_the_others_and_names_the_conflicts(repository: Repository) -> None:
    repository.put_many(Kind.NODE, [node("gw", n, name=f"n{n}") for n in "1234"])
    read = repository.get_many_versioned(Kind.NODE, ["gw.1", "gw.2", "gw.3"])
    repository.put(Kind.NODE, node("gw", "2", name="renamed meanwhile"))
    mine = [node("gw", n, name=f"mine {n}") for n in "12345"]
    with pytest.raises(ConditionFailed) as failed:
        repository.put_many(Kind.NODE, mine, expected_versions={
            **{entity_id: version for entity_id, (_, version) in read.items()}, "gw.5": 0})
    assert failed.value.ids == ("gw.2",) and failed.value.stale == []
    names = {r["id"]: r["name"] for r in repository.query(Kind.NODE, ListQuery(limit=0)).data}
    assert names == {"gw.1": "mine 1", "gw.2": "renamed meanwhile", "gw.3": "mine 3", "gw.4": "mine 4",
                     "gw.5": "mine 5"}
    with pytest.raises(ValueError):
        repository.put_many(Kind.NODE, [mine[0], mine[0]], expected_versions={"gw.1": 1})


def test_put_many_if_newer_with_versions_tells_stale_values_from_conflicts(repository: Repository) -> None:
    repository.put_many(Kind.FIELD, [field("gw", "1", "1", f, 1, ts_ms=T0 + 10) for f in "abc"])
    read = repository.get_many_versioned(Kind.FIELD, ["gw.1.1.a", "gw.1.1.b", "gw.1.1.c"])
    versions = {entity_id: version for entity_id, (_, version) in read.items()}
    labelled = {**read["gw.1.1.c"][0], "labels": {"room": "attic"}}
    repository.put(Kind.FIELD, labelled)  # an API edit after the read
    incoming = [field("gw", "1", "1", "a", 2, ts_ms=T0 + 20),  # newer: written
                field("gw", "1", "1", "b", 0, ts_ms=T0),  # older: stale
                field("gw", "1", "1", "c", 3, ts_ms=T0 + 20)]  # newer, but the record changed: a conflict
    with pytest.raises(ConditionFailed) as failed:
        repository.put_many(Kind.FIELD, incoming, if_newer=True, expected_versions=versions)
    assert failed.value.ids == ("gw.1.1.c",) and failed.value.stale == ["gw.1.1.b"]
    assert repository.get(Kind.FIELD, "gw.1.1.a") == incoming[0]
    assert repository.get(Kind.FIELD, "gw.1.1.b")["current"]["value"] == 1
    assert repository.get(Kind.FIELD, "gw.1.1.c") == labelled
    now = repository.get_many_versioned(Kind.FIELD, ["gw.1.1.b"])
    assert repository.put_many(Kind.FIELD, [incoming[1]], if_newer=True,
                               expected_versions={"gw.1.1.b": now["gw.1.1.b"][1]}) == ["gw.1.1.b"]


def test_concurrent_read_modify_writes_lose_no_update(repository: Repository) -> None:
    """Eight writers add their own labels to one node at once, through ``core.conflicts.update`` (read with the
    version, write on it, again on a conflict): every label is there at the end."""
    repository.put(Kind.NODE, node("gw", "1", labels={"start": "1"}))
    writers, rounds = 8, 6
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def label(writer: int) -> None:
        try:
            barrier.wait()
            for n in range(rounds):
                update(repository, Kind.NODE, "gw.1", lambda current, key=f"w{writer}-{n}": {
                    **(current or {}), "labels": {**(current or {}).get("labels", {}), key: "x"}})
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=label, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    labels = repository.get(Kind.NODE, "gw.1")["labels"]
    assert set(labels) == {"start"} | {f"w{w}-{n}" for w in range(writers) for n in range(rounds)}


def test_concurrent_conditional_creates_make_one_winner(repository: Repository) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def create(writer: int) -> None:
        barrier.wait()
        try:
            repository.put(Kind.USER, {"id": "solo", "by": writer}, expected_version=0)
            outcomes.append("written")
        except ConditionFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * (writers - 1) + ["written"]


def test_writes_in_a_transaction_are_read_inside_and_stored_after(repository: Repository) -> None:
    with repository.transaction():
        repository.put(Kind.TASK, {"id": "t1"})
        with repository.transaction():  # nested: joins
            repository.put_many(Kind.NODE, [node("gw", "1")])
        assert repository.get(Kind.TASK, "t1") == {"id": "t1"}
        record, version = repository.get_versioned(Kind.NODE, "gw.1")
        repository.put(Kind.NODE, {**record, "name": "in"}, expected_version=version)
    assert repository.get(Kind.NODE, "gw.1")["name"] == "in"
    assert repository.get(Kind.TASK, "t1") == {"id": "t1"}


# --------------------------------------------------------------------------------------------- query


@pytest.fixture
def fields(repository: Repository) -> dict[str, Record]:
    """Six fields with labels in mixed case, numbers, numeric strings, a boolean and text."""
    records = {
        "f1": field("gw1", "1", "1", "temp", 21.5, name="Kitchen temp", metric_type=MetricType.GAUGE_FLOAT,
                    labels={"Room": "kitchen"}),
        "f2": field("gw1", "1", "1", "hum", 40, name="Kitchen humidity", metric_type=MetricType.GAUGE,
                    labels={"room": "kitchen", "floor": "1"}),
        "f3": field("gw1", "2", "1", "temp", 18.0, name="Bedroom temp", metric_type=MetricType.GAUGE_FLOAT,
                    labels={"ROOM": "bedroom"}),
        "f4": field("gw1", "2", "1", "door", True, name="Bedroom door", metric_type=MetricType.BINARY,
                    labels={"room": "bedroom", "floor": "2"}),
        "f5": field("gw2", "1", "1", "text", "hello", name="Display", metric_type=MetricType.STRING),
        "f6": field("gw2", "1", "1", "level", "100", name="Tank level", metric_type=MetricType.GAUGE,
                    labels={"room": "garage", "floor": ""}),
    }
    repository.put_many(Kind.FIELD, list(records.values()))
    return records


NUMERIC = Filter("metricType", "in", ["gauge", MetricType.GAUGE_FLOAT])

FILTER_CASES = [
    pytest.param([Filter("labels.room", "eq", "kitchen")], {"f1", "f2"}, id="eq, label key in any case"),
    pytest.param([Filter("labels.ROOM", "ne", "kitchen")], {"f3", "f4", "f6"}, id="ne, missing key never matches"),
    pytest.param([Filter("labels.room", "in", ["bedroom", "garage"])], {"f3", "f4", "f6"}, id="in"),
    pytest.param([Filter("labels.room", "nin", ["kitchen", "attic"])], {"f3", "f4", "f6"}, id="nin"),
    pytest.param([Filter("current.value", "eq", "21.5")], {"f1"}, id="eq, number against numeric text"),
    pytest.param([Filter("current.value", "eq", 100)], {"f6"}, id="eq, numeric text against number"),
    pytest.param([Filter("current.value", "eq", True)], {"f4"}, id="eq, boolean"),
    pytest.param([Filter("current.value", "gt", 20), NUMERIC], {"f1", "f2", "f6"}, id="gt, numeric"),
    pytest.param([Filter("current.value", "lt", 21.5), NUMERIC], {"f3"}, id="lt"),
    pytest.param([Filter("current.value", "gte", 21.5), NUMERIC], {"f1", "f2", "f6"}, id="gte"),
    pytest.param([Filter("current.value", "lte", 21.5), NUMERIC], {"f1", "f3"}, id="lte"),
    pytest.param([Filter("current.value", "range_in", [18, 40])], {"f1"}, id="range_in excludes the bounds"),
    pytest.param([Filter("current.value", "range_not_in", [18, 40]), NUMERIC], {"f6"}, id="range_not_in"),
    pytest.param([Filter("labels.floor", "exists", True)], {"f2", "f4"}, id="exists, empty is absent"),
    pytest.param([Filter("labels.floor", "exists", False)], {"f1", "f3", "f5", "f6"}, id="exists false"),
    pytest.param([Filter("name", "regex", "^KITCHEN")], {"f1", "f2"}, id="regex, case-insensitive"),
    pytest.param([Filter("name", "regex", "temp$"), Filter("labels.room", "eq", "bedroom")], {"f3"}, id="AND"),
    pytest.param([Filter("GatewayId", "eq", "gw2")], {"f5", "f6"}, id="top-level key in any case"),
    pytest.param([Filter("labels.nothing", "eq", "x")], set(), id="no match"),
]


@pytest.mark.parametrize("filters, expected", FILTER_CASES)
def test_query_filters(repository: Repository, fields: dict[str, Record], filters: list[Filter],
                       expected: set[str]) -> None:
    result = repository.query(Kind.FIELD, ListQuery(filters=filters, limit=0))
    by_id = {r["id"]: name for name, r in fields.items()}
    assert {by_id[i] for i in ids(result.data)} == expected
    assert result.count == len(expected)


def test_query_sorts_by_several_keys(repository: Repository, fields: dict[str, Record]) -> None:
    f = fields
    result = repository.query(Kind.FIELD, ListQuery(sort_by=[Sort("labels.room"), Sort("current.value", "desc")]))
    # missing room first; bedroom 18 then true (=1); garage; kitchen 40 then 21.5
    assert ids(result.data) == ids([f["f5"], f["f3"], f["f4"], f["f6"], f["f2"], f["f1"]])
    result = repository.query(Kind.FIELD, ListQuery(sort_by=[Sort("labels.Room", "desc")]))
    # ties broken by id ascending
    assert ids(result.data) == ids([f["f2"], f["f1"], f["f6"], f["f4"], f["f3"], f["f5"]])


def test_query_pages_with_limit_and_offset(repository: Repository, fields: dict[str, Record]) -> None:
    everything = sorted(r["id"] for r in fields.values())
    page = repository.query(Kind.FIELD, ListQuery(limit=2, offset=1))
    assert (page.count, page.limit, page.offset) == (6, 2, 1)
    assert ids(page.data) == everything[1:3]
    assert ids(repository.query(Kind.FIELD, ListQuery(limit=0)).data) == everything
    beyond = repository.query(Kind.FIELD, ListQuery(limit=10, offset=6))
    assert (beyond.count, beyond.data) == (6, [])
    filtered = repository.query(Kind.FIELD, ListQuery(filters=[Filter("gatewayId", "eq", "gw1")], limit=1))
    assert filtered.count == 4 and len(filtered.data) == 1
    assert filtered.to_dict()["data"] == filtered.data


def test_query_of_an_empty_kind_and_bad_queries(repository: Repository, fields: dict[str, Record]) -> None:
    empty = repository.query(Kind.DASHBOARD, ListQuery())
    assert (empty.count, empty.data) == (0, [])
    with pytest.raises(QueryError, match="operator"):
        repository.query(Kind.FIELD, ListQuery(filters=[Filter("name", "like", "x")]))
    with pytest.raises(QueryError, match="regex"):
        repository.query(Kind.FIELD, ListQuery(filters=[Filter("name", "regex", "(")]))


def test_query_returns_records_of_that_kind_only(repository: Repository, fields: dict[str, Record]) -> None:
    repository.put(Kind.NODE, node("gw1", "1"))
    repository.put(Kind.TASK, {"id": "gw1.1.1.temp"})
    assert ids(repository.query(Kind.NODE, ListQuery()).data) == ["gw1.1"]
    assert repository.query(Kind.FIELD, ListQuery()).count == 6


# --------------------------------------------------------------------------------------------- children / delete


def build_tree(repository: Repository, gw: str, nodes: tuple[str, ...] = ("1", "10"),
               sources: tuple[str, ...] = ("1", "2"), fields_: tuple[str, ...] = ("a", "b")) -> list[tuple[Kind, str]]:
    """A gateway with nodes, sources and fields; returns (kind, id) top-down, each level in id order."""
    repository.put(Kind.GATEWAY, gateway(gw))
    repository.put_many(Kind.NODE, [node(gw, n) for n in nodes])
    repository.put_many(Kind.SOURCE, [source(gw, n, s) for n in nodes for s in sources])
    repository.put_many(Kind.FIELD, [field(gw, n, s, f, 1) for n in nodes for s in sources for f in fields_])
    levels: list[tuple[Kind, str]] = [(Kind.GATEWAY, gw)]
    levels += sorted((Kind.NODE, f"{gw}.{n}") for n in nodes)
    levels += sorted((Kind.SOURCE, f"{gw}.{n}.{s}") for n in nodes for s in sources)
    levels += sorted((Kind.FIELD, f"{gw}.{n}.{s}.{f}") for n in nodes for s in sources for f in fields_)
    return levels


def test_children_are_direct_children_only(repository: Repository) -> None:
    build_tree(repository, "gw")
    build_tree(repository, "gw2")  # a gateway id that extends "gw" as text
    assert ids(repository.children(Kind.GATEWAY, "gw")) == ["gw.1", "gw.10"]
    assert ids(repository.children(Kind.NODE, "gw.1")) == ["gw.1.1", "gw.1.2"]  # not gw.10's
    assert ids(repository.children(Kind.SOURCE, "gw.10.2")) == ["gw.10.2.a", "gw.10.2.b"]
    assert repository.children(Kind.SOURCE, "gw.10.2")[0] == repository.get(Kind.FIELD, "gw.10.2.a")
    assert repository.children(Kind.FIELD, "gw.1.1.a") == []
    assert repository.children(Kind.GATEWAY, "nope") == []
    assert repository.children(Kind.TASK, "gw") == []


def test_delete_gateway_cascades_to_everything_beneath(repository: Repository) -> None:
    expected = build_tree(repository, "gw")
    survivors = build_tree(repository, "gw2")
    stored = [(kind, repository.get(kind, entity_id)) for kind, entity_id in expected]
    deleted = repository.delete(Kind.GATEWAY, ["gw"])
    assert deleted == stored
    for kind, entity_id in expected:
        assert repository.get(kind, entity_id) is None
    for kind, entity_id in survivors:
        assert repository.get(kind, entity_id) is not None
    assert repository.children(Kind.GATEWAY, "gw") == []
    assert repository.query(Kind.FIELD, ListQuery(limit=0)).count == 8
    assert repository.delete(Kind.GATEWAY, ["gw"]) == []


def test_delete_node_takes_its_sources_and_fields_only(repository: Repository) -> None:
    build_tree(repository, "gw")
    deleted = [(kind, record["id"]) for kind, record in repository.delete(Kind.NODE, ["gw.1"])]
    assert deleted == [
        (Kind.NODE, "gw.1"),
        (Kind.SOURCE, "gw.1.1"), (Kind.SOURCE, "gw.1.2"),
        (Kind.FIELD, "gw.1.1.a"), (Kind.FIELD, "gw.1.1.b"), (Kind.FIELD, "gw.1.2.a"), (Kind.FIELD, "gw.1.2.b"),
    ]
    assert repository.get(Kind.GATEWAY, "gw") is not None
    assert ids(repository.children(Kind.GATEWAY, "gw")) == ["gw.10"]
    assert ids(repository.children(Kind.NODE, "gw.10")) == ["gw.10.1", "gw.10.2"]


def test_delete_source_field_and_plain_kinds(repository: Repository) -> None:
    build_tree(repository, "gw", nodes=("1",))
    deleted = repository.delete(Kind.SOURCE, ["gw.1.2", "gw.1.9"])
    assert [(k, r["id"]) for k, r in deleted] == [(Kind.SOURCE, "gw.1.2"), (Kind.FIELD, "gw.1.2.a"),
                                                  (Kind.FIELD, "gw.1.2.b")]
    assert [(k, r["id"]) for k, r in repository.delete(Kind.FIELD, ["gw.1.1.a"])] == [(Kind.FIELD, "gw.1.1.a")]
    assert ids(repository.children(Kind.SOURCE, "gw.1.1")) == ["gw.1.1.b"]
    repository.put(Kind.TASK, {"id": "t1"})
    assert repository.delete(Kind.TASK, ["t1", "t2"]) == [(Kind.TASK, {"id": "t1"})]
    assert repository.get(Kind.TASK, "t1") is None


def test_delete_cascades_to_orphans_whose_parent_was_never_stored(repository: Repository) -> None:
    repository.put(Kind.GATEWAY, gateway("gw"))
    repository.put(Kind.FIELD, field("gw", "5", "1", "x", 1))  # no node, no source
    deleted = repository.delete(Kind.GATEWAY, ["gw"])
    assert [(k, r["id"]) for k, r in deleted] == [(Kind.GATEWAY, "gw"), (Kind.FIELD, "gw.5.1.x")]
    assert repository.get(Kind.FIELD, "gw.5.1.x") is None


def test_recreated_children_are_found_again(repository: Repository) -> None:
    build_tree(repository, "gw", nodes=("1",))
    repository.delete(Kind.GATEWAY, ["gw"])
    repository.put(Kind.NODE, node("gw", "1"))
    assert ids(repository.children(Kind.GATEWAY, "gw")) == ["gw.1"]


# --------------------------------------------------------------------------------------------- seen / close


def test_seen_and_mark_seen(repository: Repository) -> None:
    assert repository.seen(["m1", "m2"]) == set()
    repository.mark_seen(["m1", "m1", "m3"])
    assert repository.seen(["m1", "m2", "m3"]) == {"m1", "m3"}
    many = [f"msg-{i}" for i in range(230)]  # several batches
    repository.mark_seen(many)
    assert repository.seen([*many, "m2"]) == set(many)
    assert repository.seen([]) == set()


def test_seen_edge_stream_ids(repository: Repository) -> None:
    """Edge ids ``<stream>-<seq>``: out of order, with gaps, and ids that only look alike stay distinct."""
    stream = "2b9c7e4e-5f0a-4d8e-9a43-0c1d2e3f4a5b-gw1"
    repository.mark_seen([f"{stream}-{s}" for s in (5, 2, 0, 9, 3)])
    repository.mark_seen([f"{stream}-1", "s-7", f"{stream}-2"])
    assert repository.seen([f"{stream}-{s}" for s in range(11)]) == {f"{stream}-{s}" for s in (0, 1, 2, 3, 5, 9)}
    assert repository.seen(["s-7", "s-07", "s-6", "s", f"{stream}-03", "gw1-3"]) == {"s-7"}


def test_seen_ids_are_not_records(repository: Repository) -> None:
    repository.mark_seen(["gw1"])
    assert repository.get(Kind.GATEWAY, "gw1") is None
    assert repository.query(Kind.GATEWAY, ListQuery()).count == 0


def restarted(repository: Repository, tmp_path: Path) -> Repository:
    """A new instance of the adapter over the same store, as a restarted process opens it (this reaches past the
    port: the fixture's memory repository persists to ``tmp_path / "store"``, the SQLite one is its file, the
    DynamoDB one is its table)."""
    from chalicelib.adapters.repository_memory import MemoryRepository
    from chalicelib.adapters.repository_sqlite import SqliteRepository

    if isinstance(repository, MemoryRepository):
        return MemoryRepository(tmp_path / "store", dump_interval_s=0)
    if isinstance(repository, SqliteRepository):
        return SqliteRepository(repository.path)
    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

    assert isinstance(repository, DynamoDBRepository), f"no restart known for {type(repository).__name__}"
    return DynamoDBRepository(repository.table_name)


def what_is_stored(repository: Repository) -> tuple[Any, ...]:
    """What the close test wrote, as a restarted instance reads it back (closed afterwards)."""
    try:
        return (repository.get(Kind.TASK, "t1"), repository.get(Kind.FIELD, "gw1.4.1.V_TEMP"),
                ids(repository.children(Kind.SOURCE, "gw1.4.1")), repository.seen(["m1", "m2", "s-7", "s-8"]))
    finally:
        repository.close()


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file()}


def test_close_keeps_what_was_written_and_a_second_close_changes_nothing(repository: Repository,
                                                                         tmp_path: Path) -> None:
    """Everything written before ``close`` is there for the next process (memory: on disk, DynamoDB: in the
    table); closing again neither loses nor rewrites anything."""
    temperature = field("gw1", "4", "1", "V_TEMP", 21.5, unit="°C")
    repository.put(Kind.TASK, {"id": "t1", "enabled": True})
    repository.put_many(Kind.FIELD, [temperature], if_newer=True)
    repository.mark_seen(["m1", "s-7"])
    expected = ({"id": "t1", "enabled": True}, temperature, ["gw1.4.1.V_TEMP"], {"m1", "s-7"})

    repository.close()
    on_disk = files_of(tmp_path)
    assert what_is_stored(restarted(repository, tmp_path)) == expected

    repository.close()
    assert files_of(tmp_path) == on_disk, "a second close must not write again"
    assert what_is_stored(restarted(repository, tmp_path)) == expected


# --------------------------------------------------------------------------------------------- DynamoDB specifics


@pytest.fixture
def dynamo(aws_mock: None) -> Iterator[Any]:
    from chalicelib.adapters.repository_dynamodb import DynamoDBRepository

    repo = DynamoDBRepository(f"mc-specifics-{uuid.uuid4().hex[:8]}", write_concurrency=4)
    repo.create_table()
    yield repo
    repo.close()


def test_dynamodb_table_definition_is_the_table_created(dynamo: Any) -> None:
    import boto3

    from chalicelib.adapters.repository_dynamodb import table_definition

    definition = table_definition("named")
    assert definition["TableName"] == "named" and "TableName" not in table_definition()
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = client.describe_table(TableName=dynamo.table_name)["Table"]
    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == definition["BillingMode"] == "PAY_PER_REQUEST"
    created = {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in table["GlobalSecondaryIndexes"]}
    assert created == {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in definition["GlobalSecondaryIndexes"]}
    ttl = client.describe_time_to_live(TableName=dynamo.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == definition["TimeToLiveSpecification"]["AttributeName"] == "ttl"


def test_dynamodb_batches_and_counts_its_calls(dynamo: Any) -> None:
    fields_ = [field("gw1", "1", "1", f"f{i:02d}", i) for i in range(60)]
    dynamo.put_many(Kind.FIELD, fields_)
    assert (dynamo.calls["batch_write"], dynamo.calls["items_written"]) == (3, 60)  # 25 + 25 + 10
    assert dynamo.calls["write_units"] == 60  # each item under 1 KB
    dynamo.get_many(Kind.FIELD, [f["id"] for f in fields_] * 2 + [f"gw1.1.1.x{i}" for i in range(50)])
    assert dynamo.calls["batch_get"] == 2  # 110 distinct keys: 100 + 10
    newer = [field("gw1", "1", "1", f"f{i:02d}", i, ts_ms=T0 + 1) for i in range(3)]
    assert dynamo.put_many(Kind.FIELD, [*newer, fields_[5]], if_newer=True) == ["gw1.1.1.f05"]
    assert (dynamo.calls["put"], dynamo.calls["conditional_rejected"]) == (4, 1)
    big = field("gw1", "1", "1", "big", "x" * 3000)
    dynamo.put(Kind.FIELD, big)
    assert dynamo.calls["write_units"] == 60 + 4 + 4  # 3 KB of value: 4 units
    dynamo.mark_seen(["a", "b"])
    assert dynamo.calls["batch_write"] == 4


def test_dynamodb_retries_unprocessed_items_then_gives_up(dynamo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters import repository_dynamodb

    monkeypatch.setattr(repository_dynamodb.time, "sleep", lambda _s: None)
    conn = dynamo._conn
    real_write, real_get = conn.batch_write_item, conn.batch_get_item
    stingy = {"writes": 2, "gets": 1}

    def batch_write_item(put_items: list[Any], delete_items: list[Any]) -> dict[str, Any]:
        if stingy["writes"] > 0 and len(put_items) > 1:  # take one item, hand the rest back
            stingy["writes"] -= 1
            real_write(put_items=put_items[:1], delete_items=[])
            rest = [{"PutRequest": {"Item": item}} for item in put_items[1:]]
            return {"UnprocessedItems": {dynamo.table_name: rest}}
        return real_write(put_items=put_items, delete_items=delete_items)

    def batch_get_item(keys: list[Any], **kwargs: Any) -> dict[str, Any]:
        if stingy["gets"] > 0 and len(keys) > 1:
            stingy["gets"] -= 1
            data = real_get(keys[:1], **kwargs)
            data["UnprocessedKeys"] = {dynamo.table_name: {"Keys": keys[1:]}}
            return data
        return real_get(keys, **kwargs)

    monkeypatch.setattr(conn, "batch_write_item", batch_write_item)
    monkeypatch.setattr(conn, "batch_get_item", batch_get_item)
    fields_ = [field("gw1", "1", "1", f"f{i}", i) for i in range(5)]
    dynamo.put_many(Kind.FIELD, fields_)
    assert dynamo.get_many(Kind.FIELD, [f["id"] for f in fields_]) == {f["id"]: f for f in fields_}
    assert dynamo.calls["retries"] == 3

    def never(put_items: list[Any], delete_items: list[Any]) -> dict[str, Any]:
        return {"UnprocessedItems": {dynamo.table_name: [{"PutRequest": {"Item": i}} for i in put_items]}}

    monkeypatch.setattr(conn, "batch_write_item", never)
    from chalicelib.adapters.repository_dynamodb import RepositoryError

    with pytest.raises(RepositoryError, match="1 request\\(s\\) still unprocessed"):
        dynamo.put_many(Kind.TASK, [{"id": "t"}])
