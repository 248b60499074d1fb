"""The in-process event bus of the local stack: EventBridge-style pattern subscriptions, delivered in order.

Every published event is matched against every subscription's compiled pattern (``core.event_pattern``), the
same patterns ``infra/`` declares as EventBridge rules. Two modes:

* ``"thread"`` (the local stack): ``publish`` hands events to a bounded queue and returns; one worker thread
  delivers them in publish order. A full queue makes ``publish`` wait: the reference drops events when its
  queue is full, we never do.
* ``"sync"`` (tests, the composition root's default): handlers run inline, inside ``publish``.

A handler that raises is retried a few times with a short backoff, then the (subscription, event) pair is
recorded in ``dead_letters`` (bounded) and logged with the event: at-least-once in spirit, and one failing
handler never stops the worker or the other subscriptions. Handlers share the event's ``detail``: they must not
mutate it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from chalicelib.core.event_pattern import EventMatcher, compile_pattern
from chalicelib.core.ports import BusEvent

from .errors import AdapterError

log = logging.getLogger(__name__)

Handler = Callable[[BusEvent], None]
_STOP: Final = object()


@dataclass(slots=True, frozen=True)
class Subscription:
    name: str
    pattern: dict[str, Any]
    handler: Handler
    match: EventMatcher


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A delivery given up after every attempt failed: which subscription, which event, the last error."""

    subscription: str
    event: BusEvent
    error: str
    attempts: int


class BusClosedError(AdapterError, RuntimeError):
    """``publish`` after ``close``: the events were not accepted."""


def event_document(event: BusEvent) -> dict[str, Any]:
    """The EventBridge JSON an event pattern is matched against."""
    return {"source": event.source, "detail-type": event.detail_type, "detail": event.detail}


class LocalEventBus:
    """``EventBus`` for one process. Thread-safe: publish and subscribe from any thread."""

    def __init__(self, mode: Literal["sync", "thread"] = "thread", max_queue: int = 100_000, *,
                 retries: int = 3, backoff_s: float = 0.01, max_dead_letters: int = 1_000) -> None:
        if mode not in ("sync", "thread"):
            raise ValueError(f"mode must be 'sync' or 'thread', got {mode!r}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.mode = mode
        self.retries = max(0, retries)
        self.backoff_s = max(0.0, backoff_s)
        self._subscriptions: tuple[Subscription, ...] = ()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        """Events published and not yet through every subscription (queued or being delivered)."""
        self._worker: threading.Thread | None = None
        self._closed = False
        self._dead_letters: deque[DeadLetter] = deque(maxlen=max(1, max_dead_letters))
        self.published = 0
        self.delivered = 0
        """Successful handler calls (one per matching subscription per event)."""
        self.failed = 0
        """Deliveries given up after all retries (each is in ``dead_letters`` while it fits)."""
        self.retried = 0

    # ----------------------------------------------------------------------------------------- port

    def subscribe(self, name: str, pattern: dict[str, Any], handler: Handler) -> None:
        """Add a subscription, or replace the one of that name (as ``put_rule`` does for a rule name).

        Raises ``PatternError`` for an invalid pattern, at subscription time rather than per event.
        """
        subscription = Subscription(name, pattern, handler, compile_pattern(pattern))
        with self._lock:
            others = tuple(s for s in self._subscriptions if s.name != name)
            self._subscriptions = (*others, subscription)

    def unsubscribe(self, name: str) -> bool:
        """Remove a subscription; whether it existed."""
        with self._lock:
            before = self._subscriptions
            self._subscriptions = tuple(s for s in before if s.name != name)
            return len(self._subscriptions) != len(before)

    def publish(self, events: Sequence[BusEvent]) -> None:
        """Deliver inline (sync) or queue for the worker (thread), waiting while the queue is full."""
        if not events:
            return
        with self._lock:
            if self._closed:
                raise BusClosedError(f"the event bus is closed; {len(events)} event(s) not published")
            self.published += len(events)
            self._unfinished += len(events)
            if self.mode == "thread":
                self._start_worker()
        if self.mode == "sync":
            for event in events:
                try:
                    self._deliver(event)
                finally:
                    self._finished()
            return
        on_worker = threading.current_thread() is self._worker
        for event in events:
            if on_worker:
                # A handler publishing from the worker must not wait for the queue it alone empties: when the
                # queue is full the event is delivered at once, ahead of those queued (order yields, nothing lost).
                try:
                    self._queue.put_nowait(event)
                except queue.Full:
                    try:
                        self._deliver(event)
                    finally:
                        self._finished()
            else:
                self._queue.put(event)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is queued, then stop the worker. Idempotent; later ``publish`` calls raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker = self._worker
        if worker is None:
            return
        if threading.current_thread() is worker:  # a handler closing the bus: stop after what is queued
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                log.warning("event bus closed from a handler with a full queue; the worker stays until exit")
            return
        if not self.drain(timeout):
            log.warning("event bus closing with %d event(s) still undelivered after %s s", self._unfinished, timeout)
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("event bus: the worker is stuck in a handler; left behind (a daemon thread)")
            return
        worker.join(timeout)

    # ----------------------------------------------------------------------------------------- tools

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every published event went through every subscription; False on timeout.

        In sync mode ``publish`` returns once delivered, so there is nothing to wait for. Called from a handler
        (the worker thread) it cannot wait for itself and only reports.
        """
        if self.mode == "sync":
            return True
        if threading.current_thread() is self._worker:
            with self._lock:
                return self._unfinished == 0
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """The most recent deliveries given up (oldest first), a snapshot."""
        with self._lock:
            return list(self._dead_letters)

    @property
    def subscriptions(self) -> list[str]:
        return [s.name for s in self._subscriptions]

    def stats(self) -> dict[str, int]:
        """Counters for the status page and the benchmarks."""
        with self._lock:
            return {"published": self.published, "delivered": self.delivered, "failed": self.failed,
                    "retried": self.retried, "queued": self._queue.qsize(), "pending": self._unfinished,
                    "dead_letters": len(self._dead_letters), "subscriptions": len(self._subscriptions)}

    # ----------------------------------------------------------------------------------------- delivery

    def _start_worker(self) -> None:
        """Start the worker on first use (under ``_lock``), so that unused buses cost no thread."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="local-event-bus", daemon=True)
            self._worker.start()

    def _finished(self) -> None:
        with self._lock:
            self._unfinished -= 1
            if not self._unfinished:
                self._idle.notify_all()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except BaseException:  # the worker outlives anything a handler does
                log.exception("event bus worker: unexpected error delivering %r", item)
            finally:
                self._finished()

    def _deliver(self, event: BusEvent) -> None:
        document = event_document(event)
        for subscription in self._subscriptions:
            if subscription.match(document):
                self._call(subscription, event)

    def _call(self, subscription: Subscription, event: BusEvent) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                subscription.handler(event)
            except Exception as error:
                if attempt <= self.retries:
                    log.warning("event bus: subscription %r failed (attempt %d of %d), retrying: %s; event %s %r",
                                subscription.name, attempt, self.retries + 1, error, event.detail_type,
                                event.detail)
                    with self._lock:
                        self.retried += 1
                    if self.backoff_s:
                        time.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                log.error("event bus: subscription %r gave up after %d attempt(s); event %s %r",
                          subscription.name, attempt, event.detail_type, event.detail, exc_info=True)
                with self._lock:
                    self.failed += 1
                    self._dead_letters.append(DeadLetter(subscription.name, event, repr(error), attempt))
                return
            with self._lock:
                self.delivered += 1
            return
