"""The memory repository's persistence: round trips, crashes at every step of a dump, corrupt files, the timer."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters import repository_memory
from chalicelib.adapters.repository_memory import (
    MANIFEST,
    MemoryRepository,
    RepositoryClosedError,
    RepositoryLoadError,
)
from chalicelib.core.model import FieldModel, Gateway, Kind, Node, Payload, Record, Source, iso_from_ms
from chalicelib.core.ports import Filter, ListQuery

T0 = 1_767_225_600_000


def field(fid: str, value: Any, seq: int = 0, node: str = "1") -> Record:
    return FieldModel(gateway_id="gw", node_id=node, source_id="1", field_id=fid,
                      current=Payload(value=value, timestamp=iso_from_ms(T0), sequence=seq)).record()


def populate(repo: MemoryRepository, tag: str) -> None:
    """A small installation whose every record carries ``tag``, to tell dumps apart."""
    repo.put(Kind.GATEWAY, Gateway(id="gw", description=tag).record())
    repo.put(Kind.NODE, Node(gateway_id="gw", node_id="1", name=tag, labels={"Room": "hall"}).record())
    repo.put(Kind.SOURCE, Source(gateway_id="gw", node_id="1", source_id="1", name=tag).record())
    repo.put_many(Kind.FIELD, [field("a", tag), field("b", tag)])
    repo.put(Kind.TASK, {"id": "t1", "tag": tag})
    repo.mark_seen([f"{tag}-m1", f"{tag}-m2"])


def state(repo: MemoryRepository) -> dict[str, Any]:
    everything = ListQuery(limit=0)
    snapshot: dict[str, Any] = {kind.value: repo.query(kind, everything).data for kind in Kind}
    snapshot["seen"] = sorted(repo._seen)
    return snapshot


TAGGED = {Kind.GATEWAY: ("description",), Kind.NODE: ("name",), Kind.SOURCE: ("name",),
          Kind.FIELD: ("current", "value"), Kind.TASK: ("tag",)}


def tags(repo: MemoryRepository) -> set[str]:
    """Every tag found in the stored records: a single tag means one consistent dump across all files."""
    found = set()
    for kind, path in TAGGED.items():
        for record in repo.query(kind, ListQuery(limit=0)).data:
            value: Any = record
            for key in path:
                value = value[key]
            found.add(value)
    return found


# --------------------------------------------------------------------------------------------- round trips


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    repo.close()
    before = state(repo)
    again = MemoryRepository(tmp_path, dump_interval_s=0)
    assert state(again) == before
    # the children index is rebuilt on load
    assert [r["id"] for r in again.children(Kind.SOURCE, "gw.1.1")] == ["gw.1.1.a", "gw.1.1.b"]
    assert again.seen(["one-m1", "x"]) == {"one-m1"}
    assert again.query(Kind.NODE, ListQuery(filters=[Filter("labels.room", "eq", "hall")])).count == 1
    again.close()


def test_files_on_disk_are_one_per_kind_plus_seen_and_a_manifest(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    assert repo.dump() is True
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["generation"] == 1
    assert manifest["files"] == {k: f"{k}.000001.json" for k in ("field", "gateway", "node", "source", "task", "seen")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST, *manifest["files"].values()])
    fields = json.loads((tmp_path / "field.000001.json").read_text())
    assert fields["kind"] == "field" and [r["id"] for r in fields["records"]] == ["gw.1.1.a", "gw.1.1.b"]
    repo.close()


def test_dump_writes_only_kinds_that_changed_and_removes_replaced_files(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    repo.dump()
    assert repo.dump() is False  # nothing changed, nothing written
    repo.put(Kind.TASK, {"id": "t2"})
    assert repo.dump() is True
    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert files["task"] == "task.000002.json"
    assert files["field"] == "field.000001.json"
    assert not (tmp_path / "task.000001.json").exists()
    repo.delete(Kind.GATEWAY, ["gw"])
    repo.close()
    again = MemoryRepository(tmp_path, dump_interval_s=0)
    assert again.query(Kind.FIELD, ListQuery()).count == 0
    assert again.get(Kind.TASK, "t2") == {"id": "t2"}
    again.close()


def test_no_data_dir_means_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    repo = MemoryRepository(None)
    populate(repo, "one")
    assert repo.dump() is False
    repo.close()
    assert list(tmp_path.iterdir()) == []


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    repo.close()
    for write in (lambda: repo.put(Kind.TASK, {"id": "t"}), lambda: repo.delete(Kind.TASK, ["t"]),
                  lambda: repo.mark_seen(["m"])):
        with pytest.raises(RepositoryClosedError):
            write()


# --------------------------------------------------------------------------------------------- seen ids


def test_seen_ids_are_bounded_oldest_first_and_persisted(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0, seen_capacity=3)
    repo.mark_seen(["m1", "m2"])
    repo.mark_seen(["m2", "m3", "m4"])
    assert repo.seen(["m1", "m2", "m3", "m4"]) == {"m2", "m3", "m4"}
    repo.close()
    again = MemoryRepository(tmp_path, dump_interval_s=0, seen_capacity=2)
    assert again.seen(["m1", "m2", "m3", "m4"]) == {"m3", "m4"}  # a smaller bound keeps the newest
    again.close()


def test_edge_stream_ids_are_kept_as_a_mark_and_runs_per_stream(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    repo.mark_seen([f"s-{i}" for i in range(5, 10)])  # a batch in order
    repo.mark_seen(["s-12", "s-11", "t-1", "plain"])  # out of order, another stream, a plain id
    repo.mark_seen([f"s-{i}" for i in range(13, 20)])  # in order after a gap
    asked = [f"s-{i}" for i in range(0, 22)] + ["t-0", "t-1", "t-2", "plain", "other", "s-010", "s-"]
    expected = {f"s-{i}" for i in (*range(5, 10), *range(11, 20))} | {"t-1", "plain"}
    assert repo.seen(asked) == expected
    assert repo.seen([f"s-{i}" for i in range(13, 20)]) == {f"s-{i}" for i in range(13, 20)}  # a batch again
    assert repo.seen([f"s-{i}" for i in range(20, 30)]) == set()
    assert repo.seen([f"s-{i}" for i in range(8, 12)]) == {"s-8", "s-9", "s-11"}
    assert repo._streams["s"] == (-1, ((5, 9), (11, 19)))  # a few numbers, not an id per message
    repo.mark_seen(["s-10"])
    assert repo._streams["s"] == (-1, ((5, 19),))
    repo.close()
    again = MemoryRepository(tmp_path, dump_interval_s=0)
    assert again.seen(asked) == expected | {"s-10"}
    again.close()


def test_the_least_recently_marked_streams_are_forgotten_first() -> None:
    repo = MemoryRepository(None, seen_streams=2)
    repo.mark_seen(["a-1"])
    repo.mark_seen(["b-1"])
    repo.mark_seen(["a-2"])  # a is used again: b is now the oldest
    repo.mark_seen(["c-1"])
    assert repo.seen(["a-1", "a-2", "b-1", "c-1"]) == {"a-1", "a-2", "c-1"}


def test_a_stream_stuck_behind_a_failed_message_stays_small() -> None:
    repo = MemoryRepository(None)
    repo.mark_seen([f"s-{i}" for i in range(0, 10)])
    for start in range(11, 50_011, 500):  # s-10 never applied; everything after it is
        repo.mark_seen([f"s-{i}" for i in range(start, start + 500)])
    assert repo._streams["s"] == (9, ((11, 50_010),))
    assert repo.seen(["s-10", "s-9", "s-50010"]) == {"s-9", "s-50010"}


def _dump_and_edit_seen_file(tmp_path: Path, ids: list[str], edit: Callable[[dict[str, Any]], None]) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    repo.mark_seen(ids)
    repo.close()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    seen_file = tmp_path / manifest["files"]["seen"]
    document = json.loads(seen_file.read_text())
    edit(document)
    seen_file.write_text(json.dumps(document))


def test_a_dump_that_lists_stream_ids_one_by_one_loads_into_streams(tmp_path: Path) -> None:
    def as_an_older_version_wrote_it(document: dict[str, Any]) -> None:
        document["ids"] = ["x", "e-3", "e-1", "e-2", "e-7", "f-01"]
        del document["streams"]

    _dump_and_edit_seen_file(tmp_path, ["x"], as_an_older_version_wrote_it)
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert loaded.seen(["x", "e-1", "e-2", "e-3", "e-4", "e-7", "f-01", "f-1"]) == {"x", "e-1", "e-2", "e-3", "e-7",
                                                                                     "f-01"}
    loaded.close()


@pytest.mark.parametrize("streams", [[1, 2], {"s": [1]}, {"s": ["1", ""]}, {"s": [1, 2]}])
def test_a_seen_file_with_bad_streams_is_named(tmp_path: Path, streams: Any) -> None:
    _dump_and_edit_seen_file(tmp_path, ["s-1"], lambda document: document.update(streams=streams))
    with pytest.raises(RepositoryLoadError, match="streams"):
        MemoryRepository(tmp_path, dump_interval_s=0)


# --------------------------------------------------------------------------------------------- failures


def test_a_dump_failing_half_way_keeps_the_previous_state_and_retries(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    repo.dump()
    populate(repo, "two")
    real_encode = repository_memory._encode
    calls = []

    def failing_encode(document: dict[str, Any]) -> bytes:
        calls.append(document.get("kind"))
        if len(calls) == 3:  # two kinds written, the third fails to serialize
            raise TypeError("not JSON serializable")
        return real_encode(document)

    monkeypatch.setattr(repository_memory, "_encode", failing_encode)
    with pytest.raises(TypeError):
        repo.dump()
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert tags(loaded) == {"one"}
    assert loaded.seen(["one-m1", "two-m1"]) == {"one-m1"}
    loaded.close()
    monkeypatch.setattr(repository_memory, "_encode", real_encode)
    assert repo.dump() is True  # everything still dirty is written now
    repo.close()
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert tags(loaded) == {"two"}
    loaded.close()


CRASH_EXIT = 17


def crash_in_child(data_dir: Path, crash: Callable[[MemoryRepository], None]) -> int:
    """Fork; the child dumps state "one", then state "two" with ``crash`` arranged to kill it mid-dump."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            repo = MemoryRepository(data_dir, dump_interval_s=0)
            populate(repo, "one")
            repo.dump()
            populate(repo, "two")
            crash(repo)
            repo.dump()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def die_on_call(target: Any, name: str, nth: int) -> None:
    """Replace ``target.name`` so that its ``nth`` call kills the process (no cleanup, like a power cut)."""
    real = getattr(target, name)
    count = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        if count[0] == nth:
            os._exit(CRASH_EXIT)
        return real(*args, **kwargs)

    setattr(target, name, wrapper)


def die_half_way_through_a_write(_repo: MemoryRepository) -> None:
    """The first file write puts half its bytes on disk, then the process dies."""
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *_exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> None:
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            os._exit(CRASH_EXIT)

    os.fdopen = lambda fd, *args, **kwargs: HalfWriter(real_fdopen(fd, *args, **kwargs))  # type: ignore[assignment]


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
@pytest.mark.parametrize("crash", [
    pytest.param(lambda repo: die_on_call(os, "replace", 1), id="before the first data file is renamed"),
    pytest.param(lambda repo: die_on_call(os, "replace", 3), id="after some data files are renamed"),
    pytest.param(lambda repo: die_on_call(os, "replace", 7), id="just before the manifest is renamed"),
    pytest.param(lambda repo: die_on_call(os, "fsync", 2), id="data file written, not yet synced"),
    pytest.param(die_half_way_through_a_write, id="half-written data file"),
])
def test_a_crash_at_any_point_of_a_dump_leaves_the_previous_complete_state(
        tmp_path: Path, crash: Callable[[MemoryRepository], None]) -> None:
    assert crash_in_child(tmp_path, crash) == CRASH_EXIT
    leftovers = {p.name for p in tmp_path.iterdir()}
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert tags(loaded) == {"one"}  # every kind from the same, complete dump
    assert loaded.seen(["one-m1", "two-m1"]) == {"one-m1"}
    assert loaded.query(Kind.FIELD, ListQuery()).count == 2
    files = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert leftovers > {MANIFEST, *files.values()}  # the crash left an unfinished dump behind ...
    assert {p.name for p in tmp_path.iterdir()} == {MANIFEST, *files.values()}  # ... which the load swept
    populate(loaded, "three")
    loaded.close()
    assert tags(MemoryRepository(tmp_path, dump_interval_s=0)) == {"three"}


def test_a_crash_after_the_manifest_keeps_the_new_state(tmp_path: Path) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    # the second directory fsync comes after the manifest rename: the new dump is committed
    assert crash_in_child(tmp_path, lambda repo: die_on_call(repository_memory, "fsync_dir", 2)) == CRASH_EXIT
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert tags(loaded) == {"two"}
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    loaded.close()


# --------------------------------------------------------------------------------------------- corrupt files


def corrupt_setup(tmp_path: Path) -> dict[str, str]:
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    repo.close()
    files: dict[str, str] = json.loads((tmp_path / MANIFEST).read_text())["files"]
    return files


@pytest.mark.parametrize("damage, fragment", [
    (lambda p, f: (p / f["field"]).write_text('{"format": "mycontroller-memory-repository", "ve'),
     "field.000001.json"),
    (lambda p, f: (p / f["node"]).write_bytes(b"\xff\xfe"), "node.000001.json"),
    (lambda p, f: (p / f["task"]).write_text("[]"), "task.000001.json: not a"),
    (lambda p, f: (p / f["seen"]).unlink(), "seen.000001.json: listed in manifest.json but missing"),
    (lambda p, f: (p / MANIFEST).write_text("{"), "manifest.json: cannot be read as JSON"),
    (lambda p, f: (p / f["gateway"]).write_text(json.dumps(
        {"format": "mycontroller-memory-repository", "version": 1, "kind": "gateway", "records": [{"x": 1}]})),
     "gateway.000001.json: record #0 has no string 'id'"),
    (lambda p, f: (p / f["gateway"]).write_text(json.dumps(
        {"format": "mycontroller-memory-repository", "version": 2, "kind": "gateway", "records": []})),
     "version 2"),
])
def test_a_corrupt_file_fails_the_load_naming_the_file(tmp_path: Path, damage: Callable[[Path, dict[str, str]], Any],
                                                       fragment: str) -> None:
    files = corrupt_setup(tmp_path)
    damage(tmp_path, files)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RepositoryLoadError) as caught:
        MemoryRepository(tmp_path, dump_interval_s=0)
    assert fragment in str(caught.value)
    assert str(tmp_path) in str(caught.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing swept or rewritten


def test_an_unknown_kind_in_the_manifest_fails_the_load(tmp_path: Path) -> None:
    files = corrupt_setup(tmp_path)
    (tmp_path / "widget.000001.json").write_text(json.dumps(
        {"format": "mycontroller-memory-repository", "version": 1, "kind": "widget", "records": []}))
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["files"] = {**files, "widget": "widget.000001.json"}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RepositoryLoadError, match="unknown kind 'widget'"):
        MemoryRepository(tmp_path, dump_interval_s=0)


def test_foreign_files_in_the_directory_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".hidden.tmp").write_text("mine too")
    repo = MemoryRepository(tmp_path, dump_interval_s=0)
    populate(repo, "one")
    repo.close()
    MemoryRepository(tmp_path, dump_interval_s=0).close()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / ".hidden.tmp").read_text() == "mine too"


# --------------------------------------------------------------------------------------------- timer


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_the_timer_dumps_changes_in_the_background(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0.01)
    populate(repo, "one")
    assert wait_for(lambda: repo.dump_count >= 1)
    count = repo.dump_count
    repo.put(Kind.TASK, {"id": "t9"})
    assert wait_for(lambda: repo.dump_count > count)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    task_file = json.loads((tmp_path / manifest["files"]["task"]).read_text())
    assert {"id": "t9"} in task_file["records"]
    repo.close()
    assert not any(t.name == "memory-repository-dump" for t in threading.enumerate())


def test_a_failing_timer_dump_is_retried_and_close_still_persists(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_encode = repository_memory._encode
    failures: list[int] = []

    def flaky(document: dict[str, Any]) -> bytes:
        if len(failures) < 2:
            failures.append(1)
            raise OSError("disk full")
        return real_encode(document)

    monkeypatch.setattr(repository_memory, "_encode", flaky)
    repo = MemoryRepository(tmp_path, dump_interval_s=0.01)
    populate(repo, "one")
    assert wait_for(lambda: repo.dump_count >= 1)
    assert len(failures) == 2
    repo.close()
    assert tags(MemoryRepository(tmp_path, dump_interval_s=0)) == {"one"}


def test_concurrent_writers_and_dumps_lose_nothing(tmp_path: Path) -> None:
    repo = MemoryRepository(tmp_path, dump_interval_s=0.001)

    def writer(n: int) -> None:
        for i in range(200):
            repo.put_many(Kind.FIELD, [field(f"w{n}-{i}", i, node=str(n))])
            repo.mark_seen([f"w{n}-{i}"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    repo.close()
    loaded = MemoryRepository(tmp_path, dump_interval_s=0)
    assert loaded.query(Kind.FIELD, ListQuery()).count == 800
    assert len(loaded.seen([f"w{n}-{i}" for n in range(4) for i in range(200)])) == 800
    assert len(loaded.children(Kind.SOURCE, "gw.2.1")) == 200
    loaded.close()
