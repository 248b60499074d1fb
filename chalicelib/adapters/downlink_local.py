"""``DownlinkSender`` for the local stack: in-process delivery to the edge agent or simulator.

As in AWS, a downlink goes to the edge device that owns its gateway (``edges``, the gateways' ``edgeId``;
``core/identity.py``), and each downlink names its gateway for the agent to route. The local edge (thing
``local``) registers one callback; each ``send`` hands an edge its downlinks in one call, as one iot-data
publish to ``mc/<thing>/down`` would. Downlinks for an edge not registered yet (the API or the processor run
before the edge has started) wait in a bounded per-edge list and are delivered, in order, on ``register``:
nothing is lost at start-up. A downlink whose gateway no edge owns is dropped and counted (``unrouted``).
``sent`` keeps a bounded history of everything sent, for tests and inspection.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from chalicelib.core.identity import EdgeResolver, one_edge, route
from mycontroller_protocol.envelope import Downlink

log = logging.getLogger(__name__)

DownlinkCallback = Callable[[list[Downlink]], None]


class LocalDownlink:
    """Thread-safe. Callbacks run on the sender's thread, in order per edge; they must return quickly
    (an asyncio edge hands over with ``loop.call_soon_threadsafe``).

    ``edges`` tells which edge owns a gateway; without it there is one edge, ``local``, owning every gateway."""

    def __init__(self, *, edges: EdgeResolver | None = None, max_pending_per_edge: int = 1_000,
                 max_history: int = 10_000) -> None:
        self.edges = edges if edges is not None else one_edge()
        self._lock = threading.RLock()
        """Held while delivering, so that pending downlinks reach a new callback before later ones."""
        self._callbacks: dict[str, DownlinkCallback] = {}
        self._pending: dict[str, deque[Downlink]] = {}
        self._max_pending = max(1, max_pending_per_edge)
        self._history: deque[Downlink] = deque(maxlen=max(1, max_history))
        self.delivered = 0
        self.failed = 0
        """Downlinks whose callback raised (logged; not retried)."""
        self.dropped = 0
        """Oldest pending downlinks pushed out of a full pending list."""
        self.unrouted = 0
        """Downlinks whose gateway no edge owns (logged; not retried)."""

    # ----------------------------------------------------------------------------------------- port

    def send(self, downlinks: Sequence[Downlink]) -> None:
        """Deliver to registered edges, keep the rest pending. Never raises for a callback's failure."""
        if not downlinks:
            return
        groups, unrouted = route(downlinks, self.edges)
        with self._lock:
            self._history.extend(downlinks)
            if unrouted:
                self.unrouted += len(unrouted)
                log.warning("downlink: no edge device owns gateway(s) %s; %d message(s) not sent",
                            ", ".join(sorted({d.gateway_id for d in unrouted})), len(unrouted))
            for edge_id, group in groups.items():
                callback = self._callbacks.get(edge_id)
                if callback is None:
                    self._hold(edge_id, group)
                else:
                    self._deliver(edge_id, callback, group)

    # ----------------------------------------------------------------------------------------- edge side

    def register(self, edge_id: str, callback: DownlinkCallback) -> None:
        """Route an edge's downlinks to ``callback`` (replacing any earlier one), pending ones first."""
        with self._lock:
            self._callbacks[edge_id] = callback
            waiting = self._pending.pop(edge_id, None)
            if waiting:
                log.info("downlink: delivering %d pending message(s) to edge %s", len(waiting), edge_id)
                self._deliver(edge_id, callback, list(waiting))

    def unregister(self, edge_id: str) -> None:
        """Stop delivering to an edge; its later downlinks wait for the next ``register``."""
        with self._lock:
            self._callbacks.pop(edge_id, None)

    @property
    def sent(self) -> list[Downlink]:
        """Everything sent, delivered or not (the most recent ``max_history``), oldest first, a snapshot."""
        with self._lock:
            return list(self._history)

    def pending(self, edge_id: str) -> list[Downlink]:
        with self._lock:
            return list(self._pending.get(edge_id, ()))

    def close(self) -> None:
        """Nothing to release."""

    # ----------------------------------------------------------------------------------------- internals

    def _hold(self, edge_id: str, group: list[Downlink]) -> None:
        waiting = self._pending.setdefault(edge_id, deque(maxlen=self._max_pending))
        overflow = max(0, len(waiting) + len(group) - self._max_pending)
        if overflow:
            self.dropped += overflow
            log.warning("downlink: edge %s is not connected and %d message(s) wait; dropped the %d oldest",
                        edge_id, self._max_pending, overflow)
        waiting.extend(group)

    def _deliver(self, edge_id: str, callback: DownlinkCallback, group: list[Downlink]) -> None:
        try:
            callback(group)
        except Exception:
            self.failed += len(group)
            log.exception("downlink: delivery of %d message(s) to edge %s failed: %r", len(group), edge_id,
                          [d.raw for d in group])
            return
        self.delivered += len(group)
