"""``HandlerQueue`` for the local stack: the in-process SQS-like queue (``adapters/queue_local.LocalSqsQueue``)
feeding the same ``handlers`` function Lambda runs, with retries and backoff (5, 10, 20, 40 s: a webhook
that is down for a minute still gets its call), a dead-letter file
(``<DATA_DIR>/handler-dead-letters.jsonl``) after ``max_receive_count`` deliveries, and delays by timer.

``consumer`` is called with SQS-shaped events (``{"Records": [...]}``) and returns the partial batch response;
it is looked up at delivery time, so the queue can exist before the function that consumes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .queue_local import LocalSqsQueue

Consumer = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalHandlerQueue:
    def __init__(self, consumer: Consumer, *, dead_letter_path: Path | None = None, max_receive_count: int = 5,
                 batch_size: int = 10, backoff_s: float = 5.0) -> None:
        self.queue = LocalSqsQueue(consumer, dead_letter_path=dead_letter_path, batch_size=batch_size,
                                   max_receive_count=max_receive_count, linger_s=0.01, name="mycontroller-handlers",
                                   backoff_s=backoff_s)

    def start(self) -> None:
        self.queue.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.queue.stop(timeout)

    def drain(self, timeout: float = 10.0) -> bool:
        return self.queue.drain(timeout)

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        self.send_delayed(requests, 0)

    def send_delayed(self, requests: Sequence[dict[str, Any]], delay_seconds: float) -> None:
        for request in requests:
            self.queue.send(json.dumps(request, separators=(",", ":"), ensure_ascii=False), delay_s=delay_seconds)

    @property
    def dead_lettered(self) -> int:
        return self.queue.dead_lettered
