"""``DownlinkSender`` for the local stack: in-process delivery to the edge agent or simulator.

The local edge registers a callback per gateway; each ``send`` hands a gateway its downlinks in one call, as
one iot-data publish would in AWS. Downlinks for a gateway not registered yet (the API or the processor run
before the edge has started) wait in a bounded per-gateway list and are delivered, in order, on ``register``:
nothing is lost at start-up. ``sent`` keeps a bounded history of everything sent, for tests and inspection.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from chalicelib.core.envelope import Downlink

log = logging.getLogger(__name__)

DownlinkCallback = Callable[[list[Downlink]], None]


class LocalDownlink:
    """Thread-safe. Callbacks run on the sender's thread, in order per gateway; they must return quickly
    (an asyncio edge hands over with ``loop.call_soon_threadsafe``)."""

    def __init__(self, *, max_pending_per_gateway: int = 1_000, max_history: int = 10_000) -> None:
        self._lock = threading.RLock()
        """Held while delivering, so that pending downlinks reach a new callback before later ones."""
        self._callbacks: dict[str, DownlinkCallback] = {}
        self._pending: dict[str, deque[Downlink]] = {}
        self._max_pending = max(1, max_pending_per_gateway)
        self._history: deque[Downlink] = deque(maxlen=max(1, max_history))
        self.delivered = 0
        self.failed = 0
        """Downlinks whose callback raised (logged; not retried)."""
        self.dropped = 0
        """Oldest pending downlinks pushed out of a full pending list."""

    # ----------------------------------------------------------------------------------------- port

    def send(self, downlinks: Sequence[Downlink]) -> None:
        """Deliver to registered gateways, keep the rest pending. Never raises for a callback's failure."""
        if not downlinks:
            return
        groups: dict[str, list[Downlink]] = {}
        for downlink in downlinks:
            groups.setdefault(downlink.gateway_id, []).append(downlink)
        with self._lock:
            self._history.extend(downlinks)
            for gateway_id, group in groups.items():
                callback = self._callbacks.get(gateway_id)
                if callback is None:
                    self._hold(gateway_id, group)
                else:
                    self._deliver(gateway_id, callback, group)

    # ----------------------------------------------------------------------------------------- edge side

    def register(self, gateway_id: str, callback: DownlinkCallback) -> None:
        """Route a gateway's downlinks to ``callback`` (replacing any earlier one), pending ones first."""
        with self._lock:
            self._callbacks[gateway_id] = callback
            waiting = self._pending.pop(gateway_id, None)
            if waiting:
                log.info("downlink: delivering %d pending message(s) to gateway %s", len(waiting), gateway_id)
                self._deliver(gateway_id, callback, list(waiting))

    def unregister(self, gateway_id: str) -> None:
        """Stop delivering to a gateway; its later downlinks wait for the next ``register``."""
        with self._lock:
            self._callbacks.pop(gateway_id, None)

    @property
    def sent(self) -> list[Downlink]:
        """Everything sent, delivered or pending, oldest first (the most recent ``max_history``), a snapshot."""
        with self._lock:
            return list(self._history)

    def pending(self, gateway_id: str) -> list[Downlink]:
        with self._lock:
            return list(self._pending.get(gateway_id, ()))

    def close(self) -> None:
        """Nothing to release."""

    # ----------------------------------------------------------------------------------------- internals

    def _hold(self, gateway_id: str, group: list[Downlink]) -> None:
        waiting = self._pending.setdefault(gateway_id, deque(maxlen=self._max_pending))
        overflow = max(0, len(waiting) + len(group) - self._max_pending)
        if overflow:
            self.dropped += overflow
            log.warning("downlink: gateway %s is not connected and %d message(s) wait; dropped the %d oldest",
                        gateway_id, self._max_pending, overflow)
        waiting.extend(group)

    def _deliver(self, gateway_id: str, callback: DownlinkCallback, group: list[Downlink]) -> None:
        try:
            callback(group)
        except Exception:
            self.failed += len(group)
            log.exception("downlink: delivery of %d message(s) to gateway %s failed: %r", len(group), gateway_id,
                          [d.raw for d in group])
            return
        self.delivered += len(group)
