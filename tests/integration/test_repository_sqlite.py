"""The SQLite repository beyond the contract (#16 item 1): a memory repository's dump migrated on the first start,
transactions that commit whole or not at all, one process per file, files that are not ours refused, and a
process killed (``kill -9``) while it writes: every write that returned is there, no transaction half."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest

from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.repository_sqlite import (
    FILE_NAME,
    RepositoryInUseError,
    SqliteRepository,
    SqliteRepositoryError,
)
from chalicelib.bootstrap import Container
from chalicelib.core.model import Kind
from chalicelib.core.ports import ListQuery
from chalicelib.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STREAM = "4f1c2d3e-0000-4000-8000-000000000001-gw"


def an_old_install(data_dir: Path) -> dict[Kind, list[dict[str, object]]]:
    """What ``STORAGE=memory`` (the former default) left in ``DATA_DIR/repository``: records and seen ids."""
    records: dict[Kind, list[dict[str, object]]] = {
        Kind.GATEWAY: [{"id": "sim", "provider": {"type": "mysensors_v2"}}],
        Kind.NODE: [{"id": "sim.1", "gatewayId": "sim", "nodeId": "1", "labels": {"room": "attic"}}],
        Kind.FIELD: [{"id": "sim.1.1.V_TEMP", "gatewayId": "sim", "current": {"value": 21.5}}],
        Kind.USER: [{"id": "admin", "username": "admin", "passwordHash": "$2b$x", "role": "admin"}],
        Kind.REVOKED_TOKEN: [{"id": "jti-1", "userId": "admin", "exp": 2_000_000_000}],
        Kind.DASHBOARD: [{"id": f"d{i}", "title": f"Dashboard {i}"} for i in range(120)],
    }
    old = MemoryRepository(data_dir / "repository", dump_interval_s=0)
    for kind, kind_records in records.items():
        old.put_many(kind, kind_records)
    old.mark_seen([f"{STREAM}-{seq}" for seq in range(1, 51)] + ["plain-id"])
    old.close()
    return records


def test_the_first_start_migrates_the_memory_repositorys_dump(tmp_path: Path) -> None:
    records = an_old_install(tmp_path)
    container = Container(Settings(data_dir=tmp_path))  # the default storage, as `make run` builds it
    repository = container.repository
    try:
        assert isinstance(repository, SqliteRepository) and repository.path == tmp_path / FILE_NAME
        for kind, kind_records in records.items():
            assert repository.query(kind, ListQuery(limit=0)).data == sorted(kind_records, key=lambda r: str(r["id"]))
        assert repository.seen([f"{STREAM}-1", f"{STREAM}-50", f"{STREAM}-51", "plain-id"]) == {
            f"{STREAM}-1", f"{STREAM}-50", "plain-id"}
    finally:
        container.close()
    assert not (tmp_path / "repository").exists() and (tmp_path / "repository.migrated" / "manifest.json").exists()
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        assert "125 records" in db.execute("SELECT value FROM meta WHERE key = 'migrated'").fetchone()[0]

    again = SqliteRepository(tmp_path / FILE_NAME, migrate_from=tmp_path / "repository")  # nothing left to take
    try:
        again.put(Kind.DASHBOARD, {"id": "d0", "title": "changed since"})
        assert again.query(Kind.DASHBOARD, ListQuery(limit=0)).count == 120
    finally:
        again.close()
    an_old_install(tmp_path)  # a dump appearing later is not taken over what the file holds
    third = SqliteRepository(tmp_path / FILE_NAME, migrate_from=tmp_path / "repository")
    try:
        assert third.get(Kind.DASHBOARD, "d0") == {"id": "d0", "title": "changed since"}
    finally:
        third.close()


def test_a_dump_that_cannot_be_read_is_not_half_migrated(tmp_path: Path) -> None:
    an_old_install(tmp_path)
    manifest = json.loads((tmp_path / "repository" / "manifest.json").read_text())
    (tmp_path / "repository" / manifest["files"]["node"]).write_text("{not json")
    with pytest.raises(SqliteRepositoryError, match=r"node.*cannot be read"):
        SqliteRepository(tmp_path / FILE_NAME, migrate_from=tmp_path / "repository")
    assert (tmp_path / "repository" / "manifest.json").exists()  # left as it was, to be fixed and migrated again
    empty = SqliteRepository(tmp_path / FILE_NAME)
    try:
        assert all(empty.query(kind, ListQuery()).count == 0 for kind in Kind)
    finally:
        empty.close()


def test_a_transaction_commits_whole_or_not_at_all(tmp_path: Path) -> None:
    repository = SqliteRepository(tmp_path / FILE_NAME)
    repository.put(Kind.TASK, {"id": "kept", "n": 0})
    with pytest.raises(RuntimeError, match="boom"), repository.transaction():
        repository.put(Kind.TASK, {"id": "kept", "n": 1})
        repository.put_many(Kind.NODE, [{"id": "gw.1"}, {"id": "gw.2"}])
        repository.delete(Kind.TASK, ["kept"])
        repository.mark_seen(["m-1", f"{STREAM}-7"])
        raise RuntimeError("boom")
    assert repository.get(Kind.TASK, "kept") == {"id": "kept", "n": 0}  # undone in memory
    assert repository.children(Kind.GATEWAY, "gw") == [] and repository.seen(["m-1", f"{STREAM}-7"]) == set()
    before = repository.get_versioned(Kind.TASK, "kept")
    with repository.transaction():
        with pytest.raises(KeyError):
            repository.put_many(Kind.TASK, [{"id": "a"}, {"no": "id"}])  # fails alone (its savepoint)
        repository.put(Kind.TASK, {"id": "b"})
    repository.close()
    reopened = SqliteRepository(tmp_path / FILE_NAME)  # and on disk
    try:
        assert reopened.get_versioned(Kind.TASK, "kept") == before
        assert reopened.get(Kind.TASK, "a") is None and reopened.get(Kind.TASK, "b") == {"id": "b"}
        assert reopened.children(Kind.GATEWAY, "gw") == [] and reopened.seen(["m-1"]) == set()
    finally:
        reopened.close()


def test_one_process_owns_the_file_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    first = SqliteRepository(path)
    with pytest.raises(RepositoryInUseError, match="in use"):
        SqliteRepository(path)
    first.close()
    with pytest.raises(SqliteRepositoryError, match="closed"):
        first.put(Kind.TASK, {"id": "late"})
    SqliteRepository(path).close()  # free again once closed

    foreign = tmp_path / "foreign.sqlite3"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE people (name TEXT)")
        db.commit()
    with pytest.raises(SqliteRepositoryError, match="not a mycontroller-sqlite-repository file"):
        SqliteRepository(foreign)
    newer = tmp_path / "newer.sqlite3"
    SqliteRepository(newer).close()
    with closing(sqlite3.connect(newer)) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
    with pytest.raises(SqliteRepositoryError, match="schema '99'"):
        SqliteRepository(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SqliteRepositoryError, match="cannot be"):
        SqliteRepository(garbage)


WRITER = textwrap.dedent("""
    import sys
    from chalicelib.adapters.repository_sqlite import SqliteRepository
    from chalicelib.core.model import Kind
    repository = SqliteRepository(sys.argv[1])
    n = 0
    while True:
        n += 1
        with repository.transaction():  # a pair: both or neither
            repository.put(Kind.TASK, {"id": f"a{n}", "pad": "x" * 2000})
            repository.put(Kind.TASK, {"id": f"b{n}", "pad": "y" * 2000})
        repository.put(Kind.DASHBOARD, {"id": f"d{n}"})
        print(n, flush=True)  # returned: acknowledged
""")


def test_a_process_killed_while_it_writes_keeps_every_write_that_returned(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    for attempt in range(3):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                                   text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert process.stdout is not None
        acknowledged = int(process.stdout.readline() or 0)  # started (imports take a while)
        deadline = time.monotonic() + 0.3 + 0.3 * attempt
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
        os.kill(process.pid, signal.SIGKILL)  # mid-write, most likely
        process.wait()
        assert acknowledged > 5, "the writer did not get going"
        repository = SqliteRepository(path)
        try:
            pairs = repository.query(Kind.TASK, ListQuery(limit=0)).data
            a_ids = {r["id"][1:] for r in pairs if r["id"].startswith("a")}
            b_ids = {r["id"][1:] for r in pairs if r["id"].startswith("b")}
            assert a_ids == b_ids, "a transaction was half kept"
            assert all(repository.get(Kind.DASHBOARD, f"d{n}") for n in range(1, acknowledged + 1))
            assert all(repository.get(Kind.TASK, f"a{n}") for n in range(1, acknowledged + 1))
            for kind in (Kind.TASK, Kind.DASHBOARD):
                repository.delete(kind, [r["id"] for r in repository.query(kind, ListQuery(limit=0)).data])
        finally:
            repository.close()
