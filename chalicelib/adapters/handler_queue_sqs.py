"""``HandlerQueue`` over SQS: ``SendMessageBatch`` ten requests at a time, failed entries retried with backoff.

The queue feeds the ``handlers`` function (event source mapping with ``ReportBatchItemFailures``; after
``maxReceiveCount`` deliveries a request goes to the dead-letter queue, see ``infra/template.py``). Requests are
JSON bodies (``HandlerRequest.to_dict()``); ``send_delayed`` sets ``DelaySeconds`` (SQS allows at most 900 s; the
handler function re-queues longer delays in steps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import boto3

from .errors import AdapterError
from .sqs_batches import send_batch

MAX_BATCH: Final = 10
MAX_DELAY_S: Final = 900
MAX_BODY_BYTES: Final = 256 * 1024


class HandlerQueueError(AdapterError):
    """Requests that could not be queued after retries."""


class SqsHandlerQueue:
    def __init__(self, queue_url: str, *, region: str | None = None, client: Any = None, attempts: int = 4,
                 backoff_s: float = 0.2) -> None:
        if not queue_url:
            raise ValueError("HANDLER_QUEUE_URL is required for HANDLER_QUEUE=sqs")
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", region_name=region)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sent = 0

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        self.send_delayed(requests, 0)

    def send_delayed(self, requests: Sequence[dict[str, Any]], delay_seconds: float) -> None:
        delay = max(0, min(MAX_DELAY_S, round(delay_seconds)))
        bodies = [json.dumps(request, separators=(",", ":"), ensure_ascii=False) for request in requests]
        for index, body in enumerate(bodies):
            if len(body.encode()) > MAX_BODY_BYTES:
                raise HandlerQueueError(f"handler request {index} is {len(body.encode())} bytes, more than SQS's "
                                        f"{MAX_BODY_BYTES}")
        for start in range(0, len(bodies), MAX_BATCH):
            self._send_batch(bodies[start:start + MAX_BATCH], delay)

    def _send_batch(self, bodies: list[str], delay: int) -> None:
        entries = {str(i): {"MessageBody": body, "DelaySeconds": delay} for i, body in enumerate(bodies)}
        sent, reasons = send_batch(self.client, self.queue_url, entries, attempts=self.attempts,
                                   backoff_s=self.backoff_s)
        self.sent += sent
        if reasons:
            raise HandlerQueueError(f"{len(bodies) - sent} handler request(s) not queued: {'; '.join(reasons[:3])}")
