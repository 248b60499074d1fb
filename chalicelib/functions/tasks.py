"""The tasks function: domain events (and timers) → the enabled tasks they match → evaluations, state, handler
requests and timers. See ``functions/automation.py`` for loops, concurrent evaluations and timers."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from ..core.automation.clock import iso
from ..core.automation.models import EVENT_TYPES, Task
from ..core.automation.scheduler_sync import sync_task
from ..core.automation.schedules import (
    ScheduleError,
    at_expression,
    task_scheduler_expression,
)
from ..core.automation.tasks import (
    TaskIndex,
    TaskOutcome,
    evaluate_task,
    maybe_re_enable,
)
from ..core.conflicts import update
from ..core.model import EventType, Kind, Record, event
from ..core.ports import (
    BusEvent,
    EventBus,
    ListQuery,
    Repository,
)
from ..observability import SERVICE, Logger
from .automation import (
    AUTOMATION_ENTITY_TYPES,
    MAX_ATTEMPTS,
    RE_ENABLE,
    RECHECK,
    TASKS_PATTERN,
    TASKS_TTL_S,
    Automation,
    timer_name,
)

logger = Logger(service=SERVICE, child=True)

# --------------------------------------------------------------------------------------------- tasks


@dataclass(slots=True)
class TaskRun:
    """One task's evaluation as the API reports it."""

    id: str
    outcome: TaskOutcome | None
    message: str = ""

    def to_dict(self) -> Record:
        outcome = self.outcome
        if outcome is None:
            return {"id": self.id, "evaluated": False, "fired": False, "queued": [], "message": self.message}
        return {"id": self.id, "evaluated": outcome.evaluated, "fired": outcome.fire,
                "queued": [r.handler_id for r in outcome.handler_requests], "triggerId": outcome.trigger_id,
                "enabled": outcome.enabled, "message": self.message or outcome.new_state.get("message", ""),
                **({"error": outcome.error} if outcome.error else {})}


class TaskFunction:
    """Domain events → the enabled tasks they match → evaluations, state, handler requests and timers."""

    def __init__(self, automation: Automation) -> None:
        self.automation = automation
        self._lock = threading.Lock()
        self._index: TaskIndex | None = None
        self._loaded_at = 0.0

    def index(self) -> TaskIndex:
        """The enabled event tasks, reloaded every ``TASKS_TTL_S``."""
        with self._lock:
            now = self.automation.monotonic()
            if self._index is None or now - self._loaded_at >= TASKS_TTL_S:
                self._index = load_task_index(self.automation.repository)
                self._loaded_at = now
            return self._index

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def matching(self, detail: Mapping[str, Any]) -> list[Task]:
        """The tasks an event triggers, minus the implicit ones for automation entities (no loops)."""
        return tasks_matching(self.index(), detail)

    def handle(self, detail: Mapping[str, Any]) -> list[TaskRun]:
        """One bus event (its ``detail``): evaluate every task it matches. One failing task does not stop the
        others; its failure is logged and, when it reached the task, recorded in its state."""
        if not isinstance(detail, Mapping) or not detail.get("entityType"):
            return []
        if detail.get("entityType") == Kind.TASK.value:
            self.invalidate()  # a task written elsewhere (the API's function): its event is news to this one's index
        runs = []
        for task in self.matching(detail):
            try:
                runs.append(self.evaluate(task.id, dict(detail)))
            except Exception:  # a store or queue failure for one task; the others still run
                logger.exception("task evaluation failed", extra={"task": task.id})
                runs.append(TaskRun(task.id, None, "evaluation failed"))
        return runs

    def subscribe(self, bus: EventBus) -> None:
        """Local stack: the in-process bus calls this function as EventBridge would call the Lambda."""
        def on_event(bus_event_: BusEvent) -> None:
            self.handle(bus_event_.detail)

        bus.subscribe("tasks", TASKS_PATTERN, on_event)

    def evaluate(self, task_id: str, detail: Record | None, *, now: datetime | None = None,
                 trigger_id: str | None = None, force: bool = False) -> TaskRun:
        """Evaluate one stored task for an event (``None``: timer or run-now), store its state, queue its handler
        requests and arrange its timers. ``force`` evaluates a disabled task too (run-now)."""
        automation = self.automation
        with automation.lock_for("task", task_id):
            for _ in range(MAX_ATTEMPTS):
                read = automation.repository.get(Kind.TASK, task_id)
                if read is None:
                    return TaskRun(task_id, None, "task not found")
                try:
                    model = Task.model_validate(read)
                except ValueError as error:
                    logger.warning("task skipped: invalid", extra={"task": task_id, "reason": str(error)[:300]})
                    return TaskRun(task_id, None, "invalid task")
                subject = model.model_copy(update={"enabled": True}) if force and not model.enabled else model
                when = now or automation.now()
                outcome = evaluate_task(subject, detail, automation.lookup, when, webhooks=automation.webhooks,
                                        location=automation.location(), trigger_id=trigger_id,
                                        state=read.get("state") or {})
                enabled_change = outcome.enabled if outcome.enabled != model.enabled else None
                if force and not model.enabled and enabled_change:
                    enabled_change = None  # run-now does not enable a disabled task
                if not outcome.evaluated and enabled_change is None:
                    return TaskRun(task_id, outcome)
                committed = automation.commit(Kind.TASK, read, outcome.new_state, enabled_change)
                if committed is None:
                    continue  # evaluated against a state another evaluation has replaced: again, on the new one
                record, version = committed
                automation.queue([r.to_dict() for r in outcome.handler_requests])
                if not automation.store(Kind.TASK, record, version):
                    continue  # written meanwhile: again, on the newer record (the queued requests are idempotent)
                self._after(record, model, outcome, detail, enabled_change)
                return TaskRun(task_id, outcome)
            logger.warning("task state kept changing; evaluation given up", extra={"task": task_id})
            return TaskRun(task_id, None, "state kept changing")

    def _after(self, record: Record, before: Task, outcome: TaskOutcome, detail: Record | None,
               enabled_change: bool | None) -> None:
        """Timers and announcements after a stored evaluation."""
        automation, registry = self.automation, self.automation.registry
        if enabled_change is not None:
            automation.announce(Kind.TASK, record)
            self.invalidate()
            if registry is not None and before.execution_interval:
                sync_task(registry, record, now=automation.now())
        if registry is None:
            return
        if outcome.re_enable_at is not None:
            registry.put(timer_name(before.id, RE_ENABLE), at_expression(outcome.re_enable_at, UTC), "UTC",
                         {"kind": "task", "id": before.id, "action": RE_ENABLE}, None, None)
        if outcome.recheck_at is not None and detail is not None:
            registry.put(timer_name(before.id, RECHECK), at_expression(outcome.recheck_at, UTC), "UTC",
                         {"kind": "task", "id": before.id, "action": RECHECK,
                          "entityType": detail.get("entityType"), "entityId": detail.get("entityId"),
                          "eventType": detail.get("type")}, None, None)

    def on_timer(self, payload: Mapping[str, Any], scheduled: datetime) -> TaskRun:
        """A registry entry of a task fired: its interval, an active-duration re-check, or a re-enable."""
        task_id = str(payload.get("id") or "")
        action = payload.get("action") or "interval"
        registry = self.automation.registry
        if action == RE_ENABLE:
            if registry is not None:
                registry.delete(timer_name(task_id, RE_ENABLE))
            return self.re_enable(task_id, scheduled)
        if action == RECHECK:
            if registry is not None:
                registry.delete(timer_name(task_id, RECHECK))
            detail = self._current_event(payload)
            if detail is None:
                return TaskRun(task_id, None, "the re-checked entity is gone")
            return self.evaluate(task_id, detail, now=scheduled, trigger_id=f"{task_id}@recheck@{iso(scheduled)}")
        run = self.evaluate(task_id, None, now=scheduled)
        self._re_arm_interval(task_id, scheduled)
        return run

    def _current_event(self, payload: Mapping[str, Any]) -> Record | None:
        """The re-checked event rebuilt from the entity as it is now (the rule must still hold on it)."""
        try:
            kind = Kind(str(payload.get("entityType")))
        except ValueError:
            return None
        record = self.automation.repository.get(kind, str(payload.get("entityId") or ""))
        if record is None:
            return None
        event_type = payload.get("eventType") if payload.get("eventType") in EVENT_TYPES else "updated"
        return event(cast(EventType, event_type), kind, record).to_dict()

    def _re_arm_interval(self, task_id: str, scheduled: datetime) -> None:
        """Intervals that are not whole minutes run as one-shot ``at(...)`` entries: put the next one."""
        registry = self.automation.registry
        record = self.automation.repository.get(Kind.TASK, task_id)
        if registry is None or record is None:
            return
        try:
            model = Task.model_validate(record)
            expression = task_scheduler_expression(model, after=scheduled)
        except (ValueError, ScheduleError):
            return
        if expression is not None and expression.one_shot and model.enabled:
            sync_task(registry, model, now=max(scheduled, self.automation.now()))

    def re_enable(self, task_id: str, now: datetime) -> TaskRun:
        automation = self.automation
        refused: list[str] = []

        def enabled(read: Record | None) -> Record | None:
            """The task re-enabled, on the record as stored now (the write is conditional on its version)."""
            refused.clear()
            if read is None:
                refused.append("task not found")
                return None
            try:
                record = maybe_re_enable(read, now)
            except ValueError:
                refused.append("invalid task")
                return None
            if record is None:
                refused.append("not due for re-enabling")
                return None
            return {**record, "state": {**(read.get("state") or {}), **record["state"]}}

        with automation.lock_for("task", task_id):
            record = update(automation.repository, Kind.TASK, task_id, enabled)
        if record is None:
            return TaskRun(task_id, None, refused[0] if refused else "not re-enabled")
        automation.announce(Kind.TASK, record)
        self.invalidate()
        if automation.registry is not None:
            sync_task(automation.registry, record, now=automation.now())
        return TaskRun(task_id, None, "re-enabled")

    def run_now(self, task_ids: Iterable[str]) -> list[TaskRun]:
        """Evaluate tasks now (API run-now), disabled ones included; the answer says what was queued."""
        now = self.automation.now()
        return [self.evaluate(task_id, None, now=now, trigger_id=f"{task_id}@run@{iso(now)}", force=True)
                for task_id in task_ids]


def load_task_index(repository: Repository) -> TaskIndex:
    """The enabled event tasks as stored now."""
    records = repository.query(Kind.TASK, ListQuery(limit=0)).data
    return TaskIndex(_valid_tasks(r for r in records if r.get("enabled", True) is not False))


def tasks_matching(index: TaskIndex, detail: Mapping[str, Any]) -> list[Task]:
    """The tasks of ``index`` an event triggers, minus the implicit ones for automation entities (no loops): what
    the tasks function evaluates, and what a publisher asks (``functions/interest.py``)."""
    tasks = index.matching(detail)
    if detail.get("entityType") in AUTOMATION_ENTITY_TYPES:
        entity_type = detail.get("entityType")
        tasks = [t for t in tasks if entity_type in t.event_filter.entity_types]
    return tasks


def _valid_tasks(records: Iterable[Record]) -> list[Task]:
    valid = []
    for record in records:
        try:
            valid.append(Task.model_validate(record))
        except ValueError as error:
            logger.warning("task skipped: invalid", extra={"task": record.get("id"), "reason": str(error)[:300]})
    return valid
