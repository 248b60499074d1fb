"""The uplink port: how envelopes leave the edge and downlinks arrive.

The agent's sender loop needs one thing from an uplink: ``publish`` that returns only when the far end has
taken responsibility for the body (a PUBACK for MQTT QoS 1, the ingest queue's acceptance in process), because
the spool deletes what was published only then. Everything else (reconnecting, resubscribing) is the
uplink's own business.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ..errors import EdgeError

DownlinkCallback = Callable[[str, bytes], None]
"""Called on the agent's event loop with the topic and the body of one downlink publish."""


class UplinkError(EdgeError, RuntimeError):
    """A publish that was not acknowledged; the envelopes stay in the spool and are sent again."""


class Uplink(ABC):
    """One connection to the cloud (or the local stack) for all of an agent's gateways."""

    kind = "uplink"
    pipelined = True
    """Whether several publishes may await their acknowledgement at once. Only for a transport that keeps them in
    order and fails them together (one MQTT connection); otherwise a refused publish followed by an accepted one
    would put messages out of order."""

    def __init__(self, up_topic: str, down_topics: list[str], logger: logging.Logger | None = None) -> None:
        self.up_topic = up_topic
        self.down_topics = list(down_topics)
        self.logger = logger or logging.getLogger("edge.uplink")
        self._downlink: DownlinkCallback | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0
        self.failed = 0
        self.downlinks = 0
        self.last_error = ""
        self.last_publish_error = ""
        """Kept apart from ``last_error``: a disconnect that follows a refused publish does not hide why it failed."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether a publish now would go out at once (the sender waits rather than queue blindly)."""

    @property
    def subscribed(self) -> bool:
        """Whether every down topic is confirmed on the current connection (the MQTT uplink checks SUBACKs)."""
        return self.connected

    @abstractmethod
    async def start(self) -> None:
        """Begin connecting; returns without waiting for the connection (the agent works offline)."""

    @abstractmethod
    async def publish(self, body: bytes) -> None:
        """Send one body to the up topic; returns when it is acknowledged, raises ``UplinkError`` otherwise."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect cleanly; pending publishes fail (their envelopes are still in the spool)."""

    async def publish_to(self, topic: str, body: bytes) -> None:
        """Publish one body to another topic than the up topic (the device shadow's ``update`` and ``get``);
        returns when it is acknowledged, raises ``UplinkError`` otherwise."""
        raise UplinkError(f"the {self.kind} uplink cannot publish to {topic}")

    def set_down_topics(self, topics: list[str]) -> None:
        """Receive from these topics from now on (gateways added or removed by the cloud's config)."""
        self.down_topics = list(dict.fromkeys(topics))

    def on_downlink(self, callback: DownlinkCallback) -> None:
        """Receive the publishes that arrive on the down topics (called on the agent's event loop)."""
        self._downlink = callback

    def _deliver(self, topic: str, payload: bytes) -> None:
        """Hand a downlink to the callback on the event loop, from whatever thread the client uses."""
        callback, loop = self._downlink, self._loop
        if callback is None or loop is None or loop.is_closed():
            self.logger.warning("downlink dropped: no receiver", extra={"topic": topic})
            return
        self.downlinks += 1
        try:
            loop.call_soon_threadsafe(callback, topic, payload)
        except RuntimeError:  # the loop closed meanwhile: the agent is stopping
            pass

    async def wait_connected(self, timeout: float) -> bool:
        """Wait (bounded) for a connection; for tools and tests, the agent itself never needs to."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.connected:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "connected": self.connected,
            "up_topic": self.up_topic,
            "down_topics": self.down_topics,
            "published": self.published,
            "failed": self.failed,
            "downlinks": self.downlinks,
            "last_error": self.last_error,
            "last_publish_error": self.last_publish_error,
        }
