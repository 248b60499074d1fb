"""What the automation functions share (``Automation``): forward payload, tasks, the scheduler's target, system jobs.

In AWS EventBridge rules on the custom bus (``infra/template.py``) send each ``field.updated`` event to the
``forward_payload`` Lambda and every domain event to the ``tasks`` Lambda, through SQS queues that hand them over
in batches (``bus_consumers.py``); EventBridge Scheduler invokes the
``scheduled`` Lambda for every schedule, interval task and one-shot re-check. Locally the in-process bus and the
local schedule timer call the very same classes.

**Tasks and loops.** Writing a task's state publishes no event; enabling or disabling one (auto-disable,
re-enable) publishes ``task.updated``. Events about automation resources (task, schedule, handler, forward payload,
settings) reach only the tasks that name that entity type in ``eventFilter.entityTypes`` explicitly: a task with
no entity types (all) is not re-triggered by its own bookkeeping, so no loop can form without the user asking.

**Concurrent evaluations of one task** (two Lambdas, two bus threads) must not lose each other's history. Within a
process they are serialised by a lock per task id. Across processes each evaluation is optimistic: read the task,
evaluate, re-read it with its version (``commit``), and write on that version (``store``, the repository's
conditional write); if its state changed before the re-read, or anything changed before the write, evaluate
again against the newer record (``MAX_ATTEMPTS``). Handler requests are queued after the re-read and before the
write, so a crash in between, or a write that lost, replays into the same trigger id, which the handler queue's
idempotency absorbs; the trigger ids in ``recentTriggers`` keep a re-evaluation from firing handlers twice for one
event.

**Timers** go through the schedule registry (``ScheduleRegistry``): interval tasks as ``task-<id>``, schedules as
``schedule-<id>`` (``scheduler_sync``), an ``active_duration`` re-check as ``task-<id>.recheck`` and a re-enable
as ``task-<id>.reenable`` (one-shot ``at(...)``;
``registry_name`` never has a dot, so these names cannot collide). Every entry
invokes ``ScheduledFunction.handle`` with ``{"kind", "id"[, "action"]}`` plus ``scheduledTime`` (EventBridge
Scheduler's ``<aws.scheduler.scheduled-time>``, the local timer's due instant): the trigger id derives from it,
so a redelivered invocation is recognised.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..core.automation.clock import Location
from ..core.automation.scheduler_sync import registry_name
from ..core.automation.tasks import (
    RepositoryLookup,
    WebhookResolver,
)
from ..core.model import Kind, Record, event
from ..core.ports import (
    EVENT_SOURCE,
    ConditionFailed,
    EventBus,
    HandlerQueue,
    Repository,
    ScheduleRegistry,
    bus_event,
)
from ..core.settings import SystemSettings, load_settings
from ..observability import SERVICE, Logger

logger = Logger(service=SERVICE, child=True)

AUTOMATION_ENTITY_TYPES: Final = frozenset({Kind.TASK.value, Kind.SCHEDULE.value, Kind.HANDLER.value,
                                            Kind.FORWARD_PAYLOAD.value, Kind.SETTINGS.value})
"""Events about these reach only tasks that list the entity type explicitly (see the module docstring)."""
TASKS_PATTERN: Final[dict[str, Any]] = {"source": [EVENT_SOURCE]}
"""Every domain event goes to the tasks function (the EventBridge rule in infra/ uses the same pattern)."""
TASKS_TTL_S: Final = 5.0
"""How long a process keeps its task index and settings: changes apply within this time."""
AUTOMATION_STAMP_ID: Final = "automation_changed"
"""A settings document written again (a new version) whenever a task or a forward payload is created, changed,
enabled, disabled or deleted, or imported (``mark_automation_changed``; a backup restore is seen within
``functions.interest.RELOAD_S``): a publisher that weighs which
consumers want its events (``functions/interest.py``) reads it with every batch and reads the tasks and forward
payloads again when it moved, so a change applies to the very next message."""
MAX_ATTEMPTS: Final = 5
"""Evaluations of one trigger against a state that changed meanwhile, before giving up (logged)."""
AT_PRECISION: Final = timedelta(seconds=1)
RECHECK: Final = "recheck"
RE_ENABLE: Final = "reenable"
_STRIPES: Final = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


def mark_automation_changed(repository: Repository) -> None:
    """Move the automation stamp (``AUTOMATION_STAMP_ID``), after the change itself was written. Best effort: if it
    cannot be written, publishers still read the tasks and forward payloads again within their TTL."""
    try:
        repository.put(Kind.SETTINGS, {"id": AUTOMATION_STAMP_ID, "changedOn": utcnow().isoformat()})
    except Exception:
        logger.exception("the automation stamp could not be written; publishers see the change within their TTL")


def timer_name(task_id: str, action: str) -> str:
    """The registry name of a task's one-shot timer (``task-<id>.recheck``, ``task-<id>.reenable``)."""
    return f"{registry_name('task', task_id)}.{action}"


def parse_instant(text: Any) -> datetime | None:
    """``scheduledTime`` as sent by EventBridge Scheduler (``2022-03-22T18:59:43Z``) or by the local timer."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class SettingsCache:
    """The system settings (location, system jobs), re-read every ``TASKS_TTL_S``; ``fallback_location`` serves
    when the settings carry no coordinates (tests, and the former ``extras["location"]``)."""

    def __init__(self, repository: Repository, *, fallback_location: Callable[[], Location | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self.fallback_location = fallback_location
        self.clock = clock
        self._lock = threading.Lock()
        self._settings: SystemSettings | None = None
        self._loaded_at = 0.0

    def settings(self) -> SystemSettings:
        with self._lock:
            now = self.clock()
            if self._settings is None or now - self._loaded_at >= TASKS_TTL_S:
                self._settings = load_settings(self.repository)
                self._loaded_at = now
            return self._settings

    def invalidate(self) -> None:
        with self._lock:
            self._settings = None

    def location(self) -> Location | None:
        found = self.settings().location()
        if found is None and self.fallback_location is not None:
            return self.fallback_location()
        return found


@dataclass(slots=True)
class Automation:
    """What the task, schedule and system-job functions share: ports, the settings, and the clocks."""

    repository: Repository
    bus: EventBus
    handler_queue: HandlerQueue | None = None
    registry: ScheduleRegistry | None = None
    webhooks: WebhookResolver | None = None
    settings: SettingsCache | None = None
    now: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    queue_source: Callable[[], HandlerQueue | None] | None = None
    """Where to find the handler queue when none was given (services may get theirs after this is built)."""
    lookup: RepositoryLookup = field(init=False)
    _locks: tuple[threading.Lock, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.lookup = RepositoryLookup(self.repository)
        if self.settings is None:
            self.settings = SettingsCache(self.repository, clock=self.monotonic)
        self._locks = tuple(threading.Lock() for _ in range(_STRIPES))

    def lock_for(self, kind: str, entity_id: str) -> threading.Lock:
        return self._locks[zlib.crc32(f"{kind}:{entity_id}".encode()) % _STRIPES]

    def location(self) -> Location | None:
        assert self.settings is not None
        return self.settings.location()

    def queue(self, requests: list[dict[str, Any]]) -> None:
        """Hand handler requests to the queue; without one (tests, tools) they are only logged."""
        if not requests:
            return
        if self.handler_queue is None and self.queue_source is not None:
            self.handler_queue = self.queue_source()
        if self.handler_queue is None:
            logger.info("no handler queue: handler requests dropped", extra={"requests": len(requests)})
            return
        self.handler_queue.send(requests)

    def commit(self, kind: Kind, read: Record, state: Record, enabled: bool | None) -> tuple[Record, int] | None:
        """A worker's new state (and ``enabled`` when it changes it) on the stored record, with the version to
        ``store`` it on, if the stored state is still ``read``'s; ``None`` when it changed meanwhile (or the record
        is gone)."""
        fresh, version = self.repository.get_versioned(kind, str(read["id"]))
        if fresh is None or fresh.get("state") != read.get("state"):
            return None
        record = {**fresh, "state": state}
        if enabled is not None:
            record["enabled"] = enabled
        return record, version

    def store(self, kind: Kind, record: Record, version: int) -> bool:
        """Write what ``commit`` made, on the version it read; False when another writer got there first (the
        caller evaluates again on the newer record)."""
        try:
            self.repository.put(kind, record, expected_version=version)
        except ConditionFailed:
            return False
        return True

    def announce(self, kind: Kind, record: Record) -> None:
        if kind == Kind.TASK:  # enabled or disabled by its own run: publishers weigh their events again
            mark_automation_changed(self.repository)
        self.bus.publish([bus_event(event("updated", kind, record))])
