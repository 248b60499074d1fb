"""Keep the schedule registry (EventBridge Scheduler in AWS) in step with schedule resources and interval tasks.

Pure: everything goes through the ``ScheduleRegistry`` port. Names are ``schedule-<id>`` and ``task-<id>``; the
payload the target receives is ``{"kind": "schedule"|"task", "id": <id>}``.

* An enabled schedule is ``put`` with ``to_scheduler_expression`` (one-shot ``at(...)`` cases use ``now`` and
  the location) and its validity window as start and end. Disabled, deleted, or with no further run (an
  ``on_date`` in the past, a sun schedule without a location): deleted.
* An enabled task with an ``executionInterval`` is ``put`` with ``task_scheduler_expression``; any other task
  (event-triggered, disabled, deleted) is deleted.

Registry errors propagate; the caller decides (the API answers 502).
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from typing import Final, Literal

from ..model import Record
from ..ports import ScheduleRegistry
from .clock import Location
from .models import Schedule, Task
from .schedules import ScheduleError, task_scheduler_expression, to_scheduler_expression, validity_bounds

log = logging.getLogger(__name__)

SyncKind = Literal["schedule", "task"]
KINDS: Final[tuple[SyncKind, ...]] = ("schedule", "task")


NAME_SAFE: Final = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""Ids kept as they are in names; EventBridge Scheduler allows ``[0-9A-Za-z-_.]{1,64}`` (the dot we keep for
suffixes such as ``.recheck``)."""


def registry_name(kind: SyncKind, entity_id: str) -> str:
    """The registry name of a schedule's or task's trigger (``schedule-<id>``, ``task-<id>``).

    An id with other characters (``:``, ``@``, ``.``…) or over 40 characters is written as its safe characters
    (up to 32) and a hash of the whole id, so every name is valid for EventBridge Scheduler, with room for a
    ``.reenable`` suffix, and distinct ids never share a name."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if NAME_SAFE.fullmatch(entity_id):
        return f"{kind}-{entity_id}"
    digest = hashlib.sha256(entity_id.encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", entity_id)[:32]
    return f"{kind}-{safe}-h{digest}"


def remove(registry: ScheduleRegistry, kind: SyncKind, entity_id: str) -> None:
    """Drop the trigger of a deleted (or disabled) schedule or task."""
    registry.delete(registry_name(kind, entity_id))


def sync_schedule(registry: ScheduleRegistry, schedule: Schedule | Record, *, now: datetime | None = None,
                  location: Location | None = None) -> bool:
    """Put or delete the trigger of one schedule; ``True`` when one is now registered."""
    model = schedule if isinstance(schedule, Schedule) else Schedule.model_validate(schedule)
    name = registry_name("schedule", model.id)
    if not model.enabled:
        registry.delete(name)
        return False
    try:
        expression = to_scheduler_expression(model, after=now or datetime.now(UTC), location=location)
        start, end = validity_bounds(model, location)
    except ScheduleError as error:
        log.warning("schedule %r has no trigger: %s", model.id, error)
        registry.delete(name)
        return False
    registry.put(name, expression.expression, expression.timezone, {"kind": "schedule", "id": model.id},
                 start, end)
    return True


def trigger_problem(schedule: Schedule | Record, *, now: datetime | None = None,
                    location: Location | None = None) -> str | None:
    """Why an enabled schedule would get no trigger (a sun schedule without a location, a date in the past…);
    ``None`` when it gets one. Shown to the user in the schedule's state rather than failing silently."""
    model = schedule if isinstance(schedule, Schedule) else Schedule.model_validate(schedule)
    if not model.enabled:
        return None
    try:
        to_scheduler_expression(model, after=now or datetime.now(UTC), location=location)
    except ScheduleError as error:
        return str(error)
    return None


def sync_task(registry: ScheduleRegistry, task: Task | Record, *, now: datetime | None = None) -> bool:
    """Put or delete the trigger of one task; ``True`` when one is now registered (enabled interval tasks)."""
    model = task if isinstance(task, Task) else Task.model_validate(task)
    name = registry_name("task", model.id)
    expression = (task_scheduler_expression(model, after=now or datetime.now(UTC))
                  if model.enabled and model.execution_interval else None)
    if expression is None:
        registry.delete(name)
        return False
    registry.put(name, expression.expression, expression.timezone, {"kind": "task", "id": model.id}, None, None)
    return True
