"""The spool on a real SQLite file: durability across SIGKILL, sequences that never repeat, the eviction policy."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from pathlib import Path

from chalicelib.core.publish_reader import decode_publish
from edge.spool import Spool, publish_body
from mycontroller_protocol.envelope import encode_publish
from tests.integration.edge_helpers import REPO, wait_until


def _reader(stream: object, lines: list[str]) -> threading.Thread:
    def read() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.decode())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _at_least(lines: list[str], count: int) -> bool:
    return len(lines) >= count


def test_every_append_survives_sigkill_and_sequences_continue(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    gateways = ["gw-a", "gw-b", "gw-c"]
    reported: list[str] = []
    for round_number in range(2):
        writer = subprocess.Popen([sys.executable, "-m", "tests.integration.edge_helpers", "spool-writer", str(path),
                                   *gateways], cwd=REPO, stdout=subprocess.PIPE)
        lines: list[str] = []
        reader = _reader(writer.stdout, lines)
        wait_until(functools.partial(_at_least, lines, 3000), 30, "the writer to append 3000 envelopes")
        writer.kill()  # SIGKILL, mid-append
        writer.wait(10)
        reader.join(10)
        assert writer.returncode == -9
        reported += [line for line in lines if line.endswith("\n")]  # a torn last line was never reported
        assert round_number == 0 or len(reported) > 3000

    spool = Spool(path)
    rows = spool.peek(limit=1_000_000)
    stored = {(row.envelope.gateway_id, row.envelope.sequence, row.envelope.message_id) for row in rows}
    appended = {tuple(line.split()) for line in reported}
    appended_keys = {(gateway, int(sequence), message_id) for gateway, sequence, message_id in appended}
    missing = appended_keys - stored
    assert not missing, f"{len(missing)} appends reported durable are gone after SIGKILL, e.g. {sorted(missing)[:3]}"
    assert len({row.envelope.message_id for row in rows}) == len(rows), "a message id was handed out twice"
    for gateway in gateways:
        sequences = [row.envelope.sequence for row in rows if row.envelope.gateway_id == gateway]
        assert sequences == list(range(1, len(sequences) + 1)), f"{gateway}: sequences not 1..n across the kill"
        following = spool.append(gateway, "test", "after restart")
        assert following is not None and following.sequence == sequences[-1] + 1
    assert spool.depth == spool.stats()["depth"] == len(rows) + len(gateways)


def test_sequences_continue_after_everything_was_acked_and_the_spool_reopened(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    first = [spool.append("gw", "test", f"m{i}") for i in range(5)]
    assert spool.ack(spool.peek(100)) == 5
    spool.close()

    reopened = Spool(path)
    assert reopened.depth == 0
    envelope = reopened.append("gw", "test", "next")
    assert envelope is not None and envelope.sequence == 6
    assert envelope.message_id not in {e.message_id for e in first if e is not None}
    assert reopened.uuid == spool.uuid, "the spool's uuid is made once and kept"


def test_full_spool_evicts_the_oldest_telemetry_and_never_a_command(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_messages=100)
    for i in range(100):
        spool.append("gw", "test", f"m{i}", command=i % 10 == 0)  # 10 commands among 100
    for i in range(100, 150):
        assert spool.append("gw", "test", f"m{i}") is not None

    rows = spool.peek(limit=1000)
    raws = [row.envelope.raw for row in rows]
    stats = spool.stats()
    assert len(rows) <= 100 and stats["depth"] == len(rows)
    assert all(f"m{i}" in raws for i in range(0, 100, 10)), "a command was evicted"
    telemetry = [int(raw[1:]) for raw, row in zip(raws, rows, strict=True) if not row.command]
    lost = sorted(set(range(150)) - {int(raw[1:]) for raw in raws})
    assert lost and all(i % 10 != 0 for i in lost)
    assert max(lost) < min(t for t in telemetry if t not in lost), "a newer telemetry went before an older one"
    assert stats["dropped_evicted_telemetry"] == len(lost)
    assert stats["dropped_refused_telemetry"] == 0 and stats["commands"] == 10


def test_only_commands_left_refuses_telemetry_and_still_takes_commands(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, max_messages=100)
    for i in range(100):
        spool.append("gw", "test", f"c{i}", command=True)
    assert spool.append("gw", "test", "telemetry") is None
    command = spool.append("gw", "test", "one more command", command=True)
    assert command is not None and command.sequence == 101, "a refused message does not use a sequence"
    stats = spool.stats()
    assert stats["depth"] == 101 and stats["commands"] == 101
    assert stats["dropped_refused_telemetry"] == 1 and stats["commands_over_bound"] == 1
    spool.close()
    assert Spool(path, max_messages=100).stats()["dropped_refused_telemetry"] == 1, "loss counters survive restart"


def test_byte_bound_and_oversize_payloads(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=64 * 1024)
    for i in range(1000):
        spool.append("gw", "test", f"{i:06d}" + "x" * 200)
    stats = spool.stats()
    assert stats["bytes"] <= 64 * 1024 and stats["dropped_evicted_telemetry"] > 0
    assert spool.peek(1)[0].envelope.raw.startswith(f"{stats['dropped_evicted_telemetry']:06d}")
    assert spool.append("gw", "test", "x" * 5000) is None
    assert spool.stats()["rejected_oversize"] == 1


def test_late_ack_of_an_evicted_row_does_not_remove_the_row_that_reused_its_id(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_messages=2)
    spool.append("gw", "test", "a")
    spool.append("gw", "test", "b")
    in_flight = spool.peek(10)
    spool.append("gw", "test", "c")  # evicts a and b; c may take a's row id
    assert [row.envelope.raw for row in spool.peek(10)] == ["c"]
    assert spool.ack(in_flight) == 0
    assert [row.envelope.raw for row in spool.peek(10)] == ["c"]


def test_peek_is_oldest_first_bounded_by_bytes_and_can_start_after_a_row(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    for i in range(50):
        spool.append(f"gw{i % 2}", "test", f"{i:03d}" + "y" * 100)
    first, more = spool.peek_batch(100, max_bytes=1000)
    assert more and 1 <= len(first) < 10 and sum(row.size for row in first) <= 1000
    assert [row.envelope.raw[:3] for row in first] == [f"{i:03d}" for i in range(len(first))]
    following = spool.peek(5, after=first[-1].rowid)
    assert following[0].envelope.raw.startswith(f"{len(first):03d}")
    assert len(spool.peek(1, max_bytes=1)) == 1, "one envelope larger than the budget still goes out alone"
    rest, more = spool.peek_batch(1000)
    assert len(rest) == 50 and not more
    assert 0 <= spool.stats()["oldest_age_s"] < 60, "the oldest row was appended just now"


def test_bodies_are_the_wire_json_and_a_publish_is_them_joined(tmp_path: Path) -> None:
    """The spool writes each envelope's JSON once; the sender joins the stored bodies into the publish, which must
    be exactly what ``encode_publish`` makes of the envelopes (the cloud reads the edge's form on a fast path)."""
    spool = Spool(tmp_path / "spool.sqlite")
    appended = [
        spool.append("gw-1", "mysensors_v2", "1;1;1;0;0;21.5"),
        spool.append("gw-1", "tasmota", '{"POWER":"ON","name":"Küche \\"1\\"\\t\\u0001"}', "stat/kitchen/RESULT"),
        spool.append("gw:2@x~y", "mc_json", "ünïcødé ☃ \U0001F600", command=True),
        spool.append("gw-1", "mysensors_v2", "", "a/\"quoted\"/topic"),
    ]
    rows = spool.peek(10)
    for row, envelope in zip(rows, appended, strict=True):
        assert envelope is not None
        assert row.body == json.dumps(envelope.to_wire(), separators=(",", ":")) and row.size == len(row.body)
        assert row.envelope == envelope
        assert (row.gateway_id, row.sequence, row.timestamp) == (envelope.gateway_id, envelope.sequence,
                                                                envelope.timestamp)
    assert publish_body(rows) == encode_publish([e for e in appended if e is not None])
    envelopes, bad = decode_publish(publish_body(rows))
    assert envelopes == appended and not bad


def test_deferred_appends_are_written_together_by_commit_or_by_any_reader(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    for i in range(5):
        spool.append("gw", "test", f"m{i}", defer=True)
    def written() -> list[str]:
        return [body for (body,) in spool._db.execute("SELECT body FROM envelopes ORDER BY id")]

    assert spool.depth == 5 and written() == [], "queued, counted, not written yet"
    spool.commit()
    assert len(written()) == 5
    spool.append("gw", "test", "m5", defer=True)
    spool.append("gw", "test", "now")  # an append that is not deferred writes the queued ones first, in order
    assert [json.loads(body)["r"] for body in written()] == [f"m{i}" for i in range(6)] + ["now"]
    spool.append("gw", "test", "m7", defer=True)
    assert [row.sequence for row in spool.peek(10)] == list(range(1, 9)), "a reader sees the deferred ones"
    spool.append("gw", "test", "m8", defer=True)
    spool.close()
    assert Spool(path).depth == 9, "closing writes what was queued"
    full = Spool(tmp_path / "full.sqlite", synchronous="full")
    full.append("gw", "test", "fsynced", defer=True)
    assert full._db.execute("SELECT count(*) FROM envelopes").fetchone()[0] == 1, "synchronous=full never defers"


def test_a_second_process_cannot_open_a_spool_in_use(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.append("gw", "test", "mine")
    other = subprocess.run([sys.executable, "-c", "import sys; from edge.spool import Spool; Spool(sys.argv[1])",
                            str(tmp_path / "spool.sqlite")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert other.returncode != 0 and "in use by another process" in other.stderr
    spool.close()
    assert Spool(tmp_path / "spool.sqlite").depth == 1


def test_rows_read_without_bodies_are_sent_with_them_and_acked_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    for i in range(10):
        spool.append(f"gw{i % 2}", "test", f"m{i}", command=i == 3)
    rows, more = spool.peek_batch(6, bodies=False)
    assert more and [row.body for row in rows] == [""] * 6 and [row.command for row in rows].count(True) == 1
    sent = spool.with_bodies(rows)
    assert [json.loads(row.body)["r"] for row in sent] == [f"m{i}" for i in range(6)]
    assert spool.ack(sent) == 6 and spool.ack(sent) == 0, "an ack of rows already gone removes nothing"
    stats = spool.stats()
    assert stats["depth"] == spool.depth == 4 and stats["commands"] == 0
    assert stats["bytes"] == sum(row.size for row in spool.peek(10))
    spool.close()
    reopened = Spool(tmp_path / "spool.sqlite")
    assert reopened.sequence("gw0") == 5 and reopened.sequence("gw1") == 5
    assert reopened.ack(reopened.peek(10)) == 4 and reopened.depth == 0
    reopened.close()
    assert Spool(tmp_path / "spool.sqlite").append("gw1", "test", "next").sequence == 6  # type: ignore[union-attr]
