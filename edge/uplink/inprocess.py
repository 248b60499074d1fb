"""The in-process uplink: the local stack (``make run``) runs the agent in its own process.

Publishes go straight to a Python callable (the local stack gives it its ingest queue, as the ingest rule
would: naming the thing, ``local``), downlinks for all its gateways come back through ``deliver_downlink``.
There is no broker, so "acknowledged" means the callable returned.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from .base import Uplink, UplinkError

PublishHandler = Callable[[bytes], None] | Callable[[bytes], Awaitable[None]]


class InProcessUplink(Uplink):
    kind = "inprocess"
    pipelined = False  # the handler may refuse one publish (queue full) and take the next: one at a time

    def __init__(self, handler: PublishHandler, up_topic: str = "mc/local/up", down_topics: list[str] | None = None,
                 logger: logging.Logger | None = None) -> None:
        super().__init__(up_topic, down_topics or [], logger)
        self.handler = handler
        self.topic_handler: Callable[[str, bytes], None] | None = None
        """Where publishes to other topics go (the local stack's shadow service)."""
        self._started = False

    @property
    def connected(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True

    async def publish(self, body: bytes) -> None:
        if not self._started:
            raise UplinkError("in-process uplink is not started")
        try:
            result = self.handler(body)
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            self.failed += 1
            self.last_error = self.last_publish_error = f"{type(error).__name__}: {error}"
            raise UplinkError(f"ingest handler refused the publish: {self.last_error}") from error
        self.published += 1

    async def publish_to(self, topic: str, body: bytes) -> None:
        if not self._started or self.topic_handler is None:
            raise UplinkError(f"in-process uplink: nothing takes publishes to {topic}")
        try:
            self.topic_handler(topic, body)
        except Exception as error:
            raise UplinkError(f"in-process publish to {topic} failed: {type(error).__name__}: {error}") from error

    def deliver_downlink(self, body: bytes | str, topic: str = "") -> None:
        """Called by the local stack's downlink adapter, from any thread: one downlink publish body."""
        self._deliver(topic, body.encode() if isinstance(body, str) else body)

    async def stop(self) -> None:
        self._started = False
