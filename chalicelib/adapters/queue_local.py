"""SQS semantics in-process: the local stack's queues, feeding the very same functions Lambda runs.

``LocalSqsQueue`` (the ingest queue of ``local/ingest_queue.py`` for edge publishes; the handler queue in
``adapters/handler_queue_local.py``) queues message bodies (bounded: a full queue makes the sender wait, nothing
is dropped), hands them to its function in batches in SQS's event shape (up to ten records; the ingest queue up
to ``INGEST_BATCH_PUBLISHES``, as its event source in AWS), and retries the records it
reports as failed with backoff; after ``max_receive_count`` deliveries they go to a dead-letter file, as SQS
would move them to the DLQ (``dead_letters_local``: one letter a line, with the reason). Letters moved to the file's
replay inbox (``python -m chalicelib.local dead-letters replay``) are queued again within a second, or at start.
``send(body, delay_s)`` holds a message back like SQS ``DelaySeconds``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from . import dead_letters_local

log = logging.getLogger(__name__)
REPLAY_POLL_S: Final = 0.5
"""How often the worker looks for letters to replay (a ``stat`` of the inbox)."""

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(slots=True)
class _Message:
    body: str
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receive_count: int = 0
    not_before: float = 0.0


class LocalSqsQueue:
    def __init__(
        self,
        handler: Handler,
        *,
        dead_letter_path: Path | None = None,
        batch_size: int = 10,
        linger_s: float = 0.02,
        max_receive_count: int = 3,
        max_depth: int = 10_000,
        name: str = "mycontroller-ingest",
        backoff_s: float = 0.2,
    ) -> None:
        self.name = name
        self.handler = handler
        self.dead_letter_path = dead_letter_path
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.max_receive_count = max_receive_count
        self.backoff_s = backoff_s
        """First retry delay; it doubles with each delivery (SQS: the visibility timeout)."""
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=max_depth)
        self._retry: list[_Message] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"local-{name}", daemon=True)
        self.delivered = 0
        self.failed_deliveries = 0
        self.dead_lettered = 0

    def start(self) -> None:
        self._thread.start()

    def send(self, body: str | bytes, delay_s: float = 0.0) -> None:
        """Queue one message; blocks when the queue is full rather than dropping it. With ``delay_s`` the message
        is first delivered after that many seconds."""
        text = body.decode() if isinstance(body, bytes) else body
        with self._lock:
            self._in_flight += 1
            if delay_s > 0:
                self._retry.append(_Message(text, not_before=time.monotonic() + delay_s))
                return
        self._queue.put(_Message(text))

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued publish has been handled (or dead-lettered)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop; what is left is dead-lettered, not lost."""
        self.drain(timeout)
        self._stop.set()
        self._thread.join(timeout)
        left: list[_Message] = []
        with self._lock:
            left, self._retry = self._retry, []
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for message in left:
            self._dead_letter(message, "still queued when the stack stopped")
        if left:
            log.warning("%s: %d message(s) were still queued at stop and went to the dead-letter file", self.name,
                        len(left))

    def _take_batch(self) -> list[_Message]:
        batch: list[_Message] = []
        now = time.monotonic()
        with self._lock:
            ready = [m for m in self._retry if m.not_before <= now]
            for message in ready[: self.batch_size]:
                self._retry.remove(message)
                batch.append(message)
        try:
            if not batch:
                batch.append(self._queue.get(timeout=0.05))
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.batch_size:
                try:  # what is already waiting goes at once, however long the batch has lingered
                    batch.append(self._queue.get_nowait())
                    continue
                except queue.Empty:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                batch.append(self._queue.get(timeout=remaining))
        except queue.Empty:
            pass
        return batch

    def _take_replays(self) -> None:
        """Letters a person asked to replay: queued again as new messages (their effects are idempotent)."""
        if self.dead_letter_path is None:
            return
        try:
            bodies = dead_letters_local.take_replays(self.dead_letter_path)
        except OSError:
            log.exception("%s: could not read the replay inbox of %s", self.name, self.dead_letter_path)
            return
        if bodies:
            with self._lock:
                self._in_flight += len(bodies)
                self._retry.extend(_Message(body) for body in bodies)
            log.warning("%s: %d dead letter(s) replayed", self.name, len(bodies))

    def _run(self) -> None:
        next_replay = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_replay:
                    next_replay = time.monotonic() + REPLAY_POLL_S
                    self._take_replays()
                batch = self._take_batch()
                if batch:
                    self._deliver(batch)
            except Exception:  # the worker must outlive any one batch
                log.exception("%s queue worker error", self.name)

    def _deliver(self, batch: list[_Message]) -> None:
        records = []
        for message in batch:
            message.receive_count += 1
            records.append({
                "messageId": message.message_id,
                "receiptHandle": message.message_id,
                "body": message.body,
                "attributes": {"ApproximateReceiveCount": str(message.receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:local:000000000000:{self.name}",
                "awsRegion": "local",
            })
        try:
            response = self.handler({"Records": records}, None)
            failed_ids = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s: the function failed on a whole batch; retrying it", self.name)
            failed_ids = {m.message_id for m in batch}
        done = 0
        for message in batch:
            if message.message_id not in failed_ids:
                self.delivered += 1
                done += 1
                continue
            self.failed_deliveries += 1
            if message.receive_count >= self.max_receive_count:
                self._dead_letter(message, f"failed {message.receive_count} deliveries (the log says why)")
                done += 1
            else:
                message.not_before = time.monotonic() + self.backoff_s * 2 ** (message.receive_count - 1)
                with self._lock:
                    self._retry.append(message)
        if done:
            with self._idle:
                self._in_flight -= done
                self._idle.notify_all()

    def _dead_letter(self, message: _Message, reason: str) -> None:
        self.dead_lettered += 1
        log.warning("%s: message %s dead-lettered after %d deliveries", self.name, message.message_id,
                    message.receive_count)
        if self.dead_letter_path is None:
            return
        try:
            dead_letters_local.append(self.dead_letter_path, [dead_letters_local.letter(
                message.body, reason, message.receive_count, message.message_id)])
        except OSError:
            log.exception("could not write the dead letter of %s to %s", message.message_id, self.dead_letter_path)
