"""One ``SendMessageBatch`` with retries, for the adapters that write to SQS (handler queue, dead letters)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any


def send_batch(client: Any, queue_url: str, entries: Mapping[str, dict[str, Any]], *, attempts: int,
               backoff_s: float) -> tuple[int, list[str]]:
    """Send ``entries`` (id → entry without its ``Id``), retrying what failed with a growing pause; a sender fault
    (a bad entry) is not retried. Returns how many were sent and, for what was not, the last reasons (empty when
    everything went)."""
    pending = dict(entries)
    reasons: list[str] = []
    sent = 0
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = client.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": key, **entry} for key, entry in pending.items()])
        except Exception as error:  # the whole call failed (network, throttling): every entry again
            reasons = [f"{type(error).__name__}: {error}"]
            continue
        for item in response.get("Successful", []):
            if pending.pop(item["Id"], None) is not None:
                sent += 1
        failed = response.get("Failed", [])
        reasons = [f"{item.get('Code')}: {item.get('Message', '')}" for item in failed]
        if not pending or any(item.get("SenderFault") for item in failed):
            break
    return sent, (reasons or ["not sent"]) if pending else []
