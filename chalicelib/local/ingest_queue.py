"""The local stack's ingest queue: edge publishes to the ingest function, as the SQS event source does in AWS."""

from __future__ import annotations

from typing import Any

from ..adapters.queue_local import Handler, LocalSqsQueue
from ..core.publish_reader import INGEST_BATCH_PUBLISHES


class LocalIngestQueue(LocalSqsQueue):
    """The ingest queue: edge publishes to the ingest function, up to ``INGEST_BATCH_PUBLISHES`` at once as the
    SQS event source hands them over."""

    def __init__(self, handler: Handler, **options: Any) -> None:
        options.setdefault("batch_size", INGEST_BATCH_PUBLISHES)
        super().__init__(handler, **options)
