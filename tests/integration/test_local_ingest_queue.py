"""The local ingest queue survives a dead-letter write that fails."""

from __future__ import annotations

import time
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


def test_publishes_waiting_go_to_the_ingest_function_a_full_batch_at_a_time() -> None:
    """As the SQS event source does: up to INGEST_BATCH_PUBLISHES publishes an invocation, so a burst costs one
    processor batch (one write per field) per hundred publishes, not per ten."""
    import threading

    from chalicelib.core.publish_reader import INGEST_BATCH_PUBLISHES

    release = threading.Event()
    sizes: list[int] = []

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        sizes.append(len(event["Records"]))
        release.wait(5.0)  # the first batch holds the worker while the burst queues up behind it
        return {"batchItemFailures": []}

    queue = LocalIngestQueue(handler, linger_s=0.0)
    queue.start()
    try:
        queue.send("first")
        deadline = time.monotonic() + 5
        while not sizes:  # the worker holds the first batch: what is sent now queues up behind it
            assert time.monotonic() < deadline, "the first publish never reached the ingest function"
            time.sleep(0.01)
        for i in range(INGEST_BATCH_PUBLISHES + 50):
            queue.send(f"burst {i}")
        release.set()
        assert queue.drain(timeout=5.0)
        assert sizes == [1, INGEST_BATCH_PUBLISHES, 50]
    finally:
        queue.stop()
