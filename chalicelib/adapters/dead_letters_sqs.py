"""``DeadLetterSink`` over SQS: messages that fail for good go straight to the ingest queue's dead-letter queue.

The same queue SQS moves a message to after its last retry (``infra/template.py``), so one place holds every message
that was not applied, each with why: ``SendMessageBatch`` ten at a time, the reason in the message attribute
``reason`` (the body stays the ingest record, so ``start-message-move-task`` back to the ingest queue replays it;
see ``docs/deploy.md``). A failure raises ``DeadLetterError`` and the ingest function retries those messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import boto3

from ..core.ports import DeadLetter
from .errors import AdapterError
from .sqs_batches import send_batch

MAX_BATCH: Final = 10
MAX_REASON_CHARS: Final = 1000


class DeadLetterError(AdapterError):
    """Letters that could not be sent to the dead-letter queue after retries."""


class SqsDeadLetters:
    def __init__(self, queue_url: str, *, region: str | None = None, client: Any = None, attempts: int = 3,
                 backoff_s: float = 0.1) -> None:
        if not queue_url:
            raise ValueError("INGEST_DEAD_LETTER_QUEUE_URL is required for INGEST_DEAD_LETTERS=sqs")
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", region_name=region)
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sent = 0

    def put(self, letters: Sequence[DeadLetter]) -> None:
        for start in range(0, len(letters), MAX_BATCH):
            self._send_batch(letters[start:start + MAX_BATCH])

    def _send_batch(self, letters: Sequence[DeadLetter]) -> None:
        entries = {str(index): {"MessageBody": item.body, "MessageAttributes": {"reason": {
                       "DataType": "String", "StringValue": item.reason[:MAX_REASON_CHARS] or "-"}}}
                   for index, item in enumerate(letters)}
        sent, reasons = send_batch(self.client, self.queue_url, entries, attempts=self.attempts,
                                   backoff_s=self.backoff_s)
        self.sent += sent
        if reasons:
            raise DeadLetterError(f"{len(letters) - sent} dead letter(s) not sent: {'; '.join(reasons[:3])}")
