"""``HandlerQueue`` over SQS: ``SendMessageBatch`` ten requests at a time, failed entries retried with backoff.

The queue feeds the ``handlers`` function (event source mapping with ``ReportBatchItemFailures``; after
``maxReceiveCount`` deliveries a request goes to the dead-letter queue, see ``infra/template.py``). Requests are
JSON bodies (``HandlerRequest.to_dict()``); ``send_delayed`` sets ``DelaySeconds`` (SQS allows at most 900 s; the
handler function re-queues longer delays in steps).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Final

import boto3

from .errors import AdapterError

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
        pending = {str(i): body for i, body in enumerate(bodies)}
        reasons: list[str] = []
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            entries = [{"Id": key, "MessageBody": body, "DelaySeconds": delay} for key, body in pending.items()]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as error:  # the whole call failed (network, throttling): try every entry again
                reasons = [f"{type(error).__name__}: {error}"]
                continue
            for item in response.get("Successful", []):
                pending.pop(item["Id"], None)
                self.sent += 1
            failed = response.get("Failed", [])
            reasons = [f"{item.get('Code')}: {item.get('Message', '')}" for item in failed]
            # a sender fault (bad entry) will not succeed on retry
            if any(item.get("SenderFault") for item in failed):
                break
            if not pending:
                return
        if pending:
            raise HandlerQueueError(f"{len(pending)} handler request(s) not queued: {'; '.join(reasons[:3])}")
