"""The local ingest queue survives a dead-letter write that fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.local.ingest_queue import LocalIngestQueue


def test_a_dead_letter_write_error_does_not_kill_the_ingest_worker(tmp_path: Path) -> None:
    """_deliver -> _dead_letter raises (here: the dead-letter file's parent is a file); the exception escapes
    _run, the worker thread dies, _in_flight is never decremented: drain() times out and every later publish
    is silently never delivered."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    handled: list[str] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            if record["body"] == "poison":
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                handled.append(record["body"])
        return {"batchItemFailures": failures}

    queue = LocalIngestQueue(handler, dead_letter_path=blocker / "dead.jsonl", max_receive_count=1, linger_s=0.0)
    queue.start()
    try:
        queue.send("poison")
        queue.drain(timeout=1.0)
        queue.send("good")
        assert queue.drain(timeout=2.0)
        assert handled == ["good"]
    finally:
        queue._stop.set()
