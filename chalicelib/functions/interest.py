"""Which automation consumers want a bus event: what the ingest asks before it puts a pack on the bus.

The tasks and forward payload functions act on few of the events a site makes: a task evaluates the events its
``eventFilter`` matches, a forward payload the updates of its source field. ``ConsumerInterest`` answers, for one
event, which of them would act on it (``core.bus_packing.AUTOMATION_CONSUMERS``), by the very tests the functions
apply (``functions.tasks.tasks_matching``, ``functions.forward.forwarded``) over the enabled tasks and mappings.

It reads them again when the automation stamp moved (``functions.automation.AUTOMATION_STAMP_ID``: the API, an
import and a task's own enabling write it after the change), which ``refresh`` reads once per publish (one small
consistent read a batch): a task created, changed or enabled applies to the very next message. They are read again
every ``ttl_s`` anyway (a change made some other way: a backup restored).

The EventBridge adapter then addresses each pack to those consumers only (``to``) and leaves out the events nobody
wants at all (nor the notifier): at a home with a few tasks most batches never reach the bus, the tasks function or
the forward payload function.

Events this cannot judge go to every consumer: another source's, and those about anything but gateways, nodes,
sources and fields (a task's event also refreshes the tasks function's index). Reading the tasks or mappings failing
is the adapter's business: it then addresses the pack to everyone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..core.automation.models import ForwardPayload
from ..core.automation.tasks import TaskIndex
from ..core.bus_packing import AUTOMATION_CONSUMERS
from ..core.model import Kind
from ..core.ports import EVENT_SOURCE, BusEvent, Repository
from .automation import AUTOMATION_STAMP_ID
from .forward import forwarded, load_mappings
from .tasks import load_task_index, tasks_matching

JUDGED_KINDS: Final = frozenset({Kind.GATEWAY.value, Kind.NODE.value, Kind.SOURCE.value, Kind.FIELD.value})
"""Entity types whose events are weighed; others reach every consumer."""
EVERYONE: Final = frozenset(AUTOMATION_CONSUMERS)
NOBODY: Final = frozenset[str]()
TASKS: Final = frozenset({"tasks"})
FORWARD: Final = frozenset({"forward_payload"})
BOTH: Final = TASKS | FORWARD
RELOAD_S: Final = 60.0
"""How long the tasks and mappings read are trusted while the automation stamp stays where it was."""


class ConsumerInterest:
    """``interest(event)`` → the automation consumers that would act on it (``core.bus_packing.Consumers``)."""

    def __init__(self, repository: Repository, *, ttl_s: float = RELOAD_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._tasks: TaskIndex | None = None
        self._mappings: dict[str, list[ForwardPayload]] = {}
        self._loaded_at = 0.0
        self._stamp: int | None = None
        """The automation stamp's version when the tasks and mappings were read."""

    def refresh(self) -> None:
        """Before a publish: read the automation stamp; if it moved since the tasks and mappings were read, they
        are read again at the first event that needs them."""
        _record, version = self.repository.get_versioned(Kind.SETTINGS, AUTOMATION_STAMP_ID)
        with self._lock:
            if version != self._stamp:
                self._tasks = None
            self._stamp = version

    def __call__(self, event: BusEvent) -> frozenset[str]:
        detail = event.detail
        if event.source != EVENT_SOURCE or detail.get("entityType") not in JUDGED_KINDS:
            return EVERYONE
        tasks, mappings = self.indexes()
        wanted_by_tasks = bool(len(tasks)) and bool(tasks_matching(tasks, detail))
        wanted_by_forward = bool(mappings) and forwarded(event.detail_type, detail, mappings)
        if wanted_by_tasks:
            return BOTH if wanted_by_forward else TASKS
        return FORWARD if wanted_by_forward else NOBODY

    def indexes(self) -> tuple[TaskIndex, Mapping[str, Any]]:
        """The enabled tasks and mappings, read again when older than ``ttl_s``."""
        with self._lock:
            if self._tasks is not None and self.monotonic() - self._loaded_at < self.ttl_s:
                return self._tasks, self._mappings
        tasks = load_task_index(self.repository)  # (after the stamp was read: a change after it moves it again)
        mappings = load_mappings(self.repository)
        with self._lock:
            self._tasks, self._mappings, self._loaded_at = tasks, mappings, self.monotonic()
        return tasks, mappings

    def invalidate(self) -> None:
        with self._lock:
            self._tasks = None
