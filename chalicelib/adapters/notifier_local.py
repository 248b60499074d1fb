"""``Notifier`` for the local websocket server (``chalicelib/local/front.py``): each open connection registers a
sink, a bounded send queue drained by its own writer thread, so a slow client never holds up the others.

``post`` only enqueues. A client whose queue is full has fallen behind: it is closed (1013, "try again later")
and ``Gone`` is raised, so notify forgets it; the browser reconnects and subscribes afresh. ``close`` ends one
connection whose session ended (the websocket service's re-check): the front only has to register a ``Sink``.
"""

from __future__ import annotations

import threading
from typing import Protocol

from chalicelib.core.ports import Gone

CLOSE_TOO_SLOW = 1013


class Sink(Protocol):
    def offer(self, data: bytes) -> bool:
        """Queue a text message; False when the queue is full (the client fell behind) or closed."""
        ...

    def close(self, code: int, reason: str) -> None: ...


class LocalNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[str, Sink] = {}
        self.dropped = 0
        """Connections closed for falling behind."""

    def register(self, connection_id: str, sink: Sink) -> None:
        with self._lock:
            self._sinks[connection_id] = sink

    def unregister(self, connection_id: str) -> None:
        with self._lock:
            self._sinks.pop(connection_id, None)

    def post(self, connection_id: str, data: bytes) -> None:
        with self._lock:
            sink = self._sinks.get(connection_id)
        if sink is None:
            raise Gone(connection_id)
        if not sink.offer(data):
            self.unregister(connection_id)
            with self._lock:
                self.dropped += 1
            sink.close(CLOSE_TOO_SLOW, "too slow: messages were not read")
            raise Gone(connection_id)

    def close(self, connection_id: str, code: int, reason: str) -> None:
        """Close one connection (its session ended); unknown ids are ignored. Its reader then disconnects it."""
        with self._lock:
            sink = self._sinks.pop(connection_id, None)
        if sink is not None:
            sink.close(code, reason)

    def close_all(self, code: int, reason: str) -> None:
        """Close every connection (the server is stopping)."""
        with self._lock:
            sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            sink.close(code, reason)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sinks)
