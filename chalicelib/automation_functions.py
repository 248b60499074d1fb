"""Automation functions: forward payload, tasks, the scheduler's target, and the system jobs.

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
evaluate, re-read it, and write only if its state is still the one evaluated against; otherwise evaluate again
against the newer state (``MAX_ATTEMPTS``). Handler requests are queued after that check and before the write, so
a crash in between replays into the same trigger id, which the handler queue's idempotency absorbs. The re-read
and the write are two calls (the repository port has no compare-and-set for whole records yet), so a window of
one round trip remains in which a concurrent write can be overwritten; the trigger ids in ``recentTriggers``
keep even that case from firing handlers twice for one event.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from aws_lambda_powertools import Logger

from .core.actions import ActionError, gateway_action
from .core.automation.clock import Location, from_iso, iso, parse_duration
from .core.automation.forward import ForwardPlan, index_mappings, plan_forward_report
from .core.automation.models import EVENT_TYPES, ForwardPayload, Schedule, Task, Validity
from .core.automation.node_state import nodes_gone_silent
from .core.automation.scheduler_sync import registry_name, sync_schedule, sync_task
from .core.automation.schedules import (
    ScheduleError,
    ScheduleOutcome,
    at_expression,
    fire_schedule,
    task_scheduler_expression,
    to_scheduler_expression,
)
from .core.automation.tasks import (
    RepositoryLookup,
    TaskIndex,
    TaskOutcome,
    WebhookResolver,
    evaluate_task,
    maybe_re_enable,
)
from .core.envelope import Downlink
from .core.model import EventType, Kind, Record, event, now_ms
from .core.ports import (
    EVENT_SOURCE,
    BusEvent,
    DownlinkSender,
    EventBus,
    Filter,
    HandlerQueue,
    ListQuery,
    Repository,
    ScheduleRegistry,
    bus_event,
)
from .core.settings import SystemSettings, load_settings

logger = Logger(service="mycontroller-automation")

FORWARD_PATTERN: Final[dict[str, Any]] = {"source": [EVENT_SOURCE], "detail-type": ["field.updated"]}
"""The events forward payload reacts to (the same pattern the EventBridge rule in infra/ uses)."""
MAPPINGS_TTL_S: Final = 5.0
"""How long a process keeps the mapping index: changes to forward payloads apply within this time."""


class ForwardPayloadFunction:
    """``field.updated`` → the downlinks that carry the value to every enabled mapping's destination field."""

    def __init__(self, repository: Repository, downlink: DownlinkSender, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.repository = repository
        self.downlink = downlink
        self.lookup = RepositoryLookup(repository)
        self.clock = clock
        self._lock = threading.Lock()
        self._index: dict[str, list[ForwardPayload]] = {}
        self._loaded_at: float | None = None

    def mappings_from(self, source_quick_id: str) -> list[ForwardPayload]:
        """Enabled mappings with this source, from an index reloaded every ``MAPPINGS_TTL_S`` seconds."""
        with self._lock:
            now = self.clock()
            if self._loaded_at is None or now - self._loaded_at >= MAPPINGS_TTL_S:
                records = self.repository.query(Kind.FORWARD_PAYLOAD, ListQuery(limit=0)).data
                self._index = index_mappings(self._valid(records))
                self._loaded_at = now
            return list(self._index.get(source_quick_id, ()))

    @staticmethod
    def _valid(records: list[Record]) -> list[ForwardPayload]:
        """Mappings as models; one that does not validate is logged and skipped, not fatal for the others."""
        valid = []
        for record in records:
            try:
                valid.append(ForwardPayload.model_validate(record))
            except ValueError as error:
                logger.warning("forward payload mapping skipped", extra={"mapping": record.get("id"),
                                                                         "reason": str(error)[:300]})
        return valid

    def handle(self, detail: dict[str, Any]) -> ForwardPlan:
        entity_id = detail.get("entityId")
        if detail.get("entityType") != Kind.FIELD.value or not isinstance(entity_id, str):
            return ForwardPlan()
        mappings = self.mappings_from(f"{Kind.FIELD.value}:{entity_id}")
        if not mappings:
            return ForwardPlan()
        plan = plan_forward_report(detail, mappings, self.lookup)
        if plan.downlinks:
            self.downlink.send(plan.downlinks)
        for failure in plan.failures:
            logger.warning("forward payload could not send", extra={"mapping": failure.mapping_id,
                                                                     "reason": failure.reason})
        return plan

    def subscribe(self, bus: EventBus) -> None:
        """Local stack: the in-process bus calls this function as EventBridge would call the Lambda."""
        def on_event(event: BusEvent) -> None:
            self.handle(event.detail)

        bus.subscribe("forward-payload", FORWARD_PATTERN, on_event)


AUTOMATION_ENTITY_TYPES: Final = frozenset({Kind.TASK.value, Kind.SCHEDULE.value, Kind.HANDLER.value,
                                            Kind.FORWARD_PAYLOAD.value, Kind.SETTINGS.value})
"""Events about these reach only tasks that list the entity type explicitly (see the module docstring)."""
TASKS_PATTERN: Final[dict[str, Any]] = {"source": [EVENT_SOURCE]}
"""Every domain event goes to the tasks function (the EventBridge rule in infra/ uses the same pattern)."""
TASKS_TTL_S: Final = 5.0
"""How long a process keeps its task index and settings: changes apply within this time."""
MAX_ATTEMPTS: Final = 5
"""Evaluations of one trigger against a state that changed meanwhile, before giving up (logged)."""
AT_PRECISION: Final = timedelta(seconds=1)
RECHECK: Final = "recheck"
RE_ENABLE: Final = "reenable"
_STRIPES: Final = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


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

    def commit(self, kind: Kind, read: Record, state: Record, enabled: bool | None) -> Record | None:
        """Write a worker's new state (and ``enabled`` when it changes it) onto the stored record, if the stored
        state is still ``read``'s; ``None`` when it changed meanwhile (or the record is gone)."""
        fresh = self.repository.get(kind, str(read["id"]))
        if fresh is None or fresh.get("state") != read.get("state"):
            return None
        record = {**fresh, "state": state}
        if enabled is not None:
            record["enabled"] = enabled
        return record

    def announce(self, kind: Kind, record: Record) -> None:
        self.bus.publish([bus_event(event("updated", kind, record))])


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
                records = self.automation.repository.query(Kind.TASK, ListQuery(limit=0)).data
                self._index = TaskIndex(_valid_tasks(r for r in records if r.get("enabled", True) is not False))
                self._loaded_at = now
            return self._index

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def matching(self, detail: Mapping[str, Any]) -> list[Task]:
        """The tasks an event triggers, minus the implicit ones for automation entities (no loops)."""
        tasks = self.index().matching(detail)
        if detail.get("entityType") in AUTOMATION_ENTITY_TYPES:
            entity_type = detail.get("entityType")
            tasks = [t for t in tasks if entity_type in t.event_filter.entity_types]
        return tasks

    def handle(self, detail: Mapping[str, Any]) -> list[TaskRun]:
        """One bus event (its ``detail``): evaluate every task it matches. One failing task does not stop the
        others; its failure is logged and, when it reached the task, recorded in its state."""
        if not isinstance(detail, Mapping) or not detail.get("entityType"):
            return []
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
                record = automation.commit(Kind.TASK, read, outcome.new_state, enabled_change)
                if record is None:
                    continue  # evaluated against a state another evaluation has replaced: again, on the new one
                automation.queue([r.to_dict() for r in outcome.handler_requests])
                automation.repository.put(Kind.TASK, record)
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
        with automation.lock_for("task", task_id):
            read = automation.repository.get(Kind.TASK, task_id)
            if read is None:
                return TaskRun(task_id, None, "task not found")
            try:
                record = maybe_re_enable(read, now)
            except ValueError:
                return TaskRun(task_id, None, "invalid task")
            if record is None:
                return TaskRun(task_id, None, "not due for re-enabling")
            automation.repository.put(Kind.TASK, {**record, "state": {**(read.get("state") or {}),
                                                                      **record["state"]}})
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


def _valid_tasks(records: Iterable[Record]) -> list[Task]:
    valid = []
    for record in records:
        try:
            valid.append(Task.model_validate(record))
        except ValueError as error:
            logger.warning("task skipped: invalid", extra={"task": record.get("id"), "reason": str(error)[:300]})
    return valid


# --------------------------------------------------------------------------------------------- schedules


@dataclass(slots=True)
class ScheduleRun:
    id: str
    outcome: ScheduleOutcome | None
    message: str = ""

    def to_dict(self) -> Record:
        outcome = self.outcome
        if outcome is None:
            return {"id": self.id, "fired": False, "queued": [], "message": self.message}
        return {"id": self.id, "fired": outcome.fired, "queued": [r.handler_id for r in outcome.handler_requests],
                "triggerId": outcome.trigger_id, "enabled": outcome.enabled,
                "nextRun": iso(outcome.next_run) if outcome.next_run else None,
                "message": self.message or outcome.new_state.get("message", ""),
                **({"error": outcome.error} if outcome.error else {})}


class ScheduleFunction:
    """Runs a schedule at its scheduled time: state, handler requests, and the next one-shot entry."""

    def __init__(self, automation: Automation) -> None:
        self.automation = automation

    def fire(self, schedule_id: str, scheduled: datetime, *, run_now: bool = False) -> ScheduleRun:
        automation = self.automation
        registry = automation.registry
        with automation.lock_for("schedule", schedule_id):
            for _ in range(MAX_ATTEMPTS):
                read = automation.repository.get(Kind.SCHEDULE, schedule_id)
                if read is None:
                    if registry is not None and not run_now:
                        registry.delete(registry_name("schedule", schedule_id))  # a trigger outlived its schedule
                    return ScheduleRun(schedule_id, None, "schedule not found")
                try:
                    model = Schedule.model_validate(read)
                except ValueError as error:
                    logger.warning("schedule skipped: invalid", extra={"schedule": schedule_id,
                                                                       "reason": str(error)[:300]})
                    return ScheduleRun(schedule_id, None, "invalid schedule")
                last_run = from_iso(model.state.last_run)
                if not run_now and last_run is not None and last_run >= scheduled:
                    return ScheduleRun(schedule_id, None, "already ran for this time")  # a redelivery
                subject = model.model_copy(update={"enabled": True, "validity": Validity()}) if run_now else model
                trigger = f"{schedule_id}@run@{iso(scheduled)}" if run_now else f"{schedule_id}@{iso(scheduled)}"
                location = automation.location()
                outcome = fire_schedule(subject, scheduled, automation.lookup, location=location,
                                        webhooks=automation.webhooks, trigger_id=trigger)
                if not outcome.fired:
                    if registry is not None and not run_now and model.enabled:
                        self._re_arm(registry, read, scheduled, location, False)  # a one-shot outside its window
                    return ScheduleRun(schedule_id, outcome, "not fired (disabled or outside its validity)")
                enabled_change = outcome.enabled if outcome.enabled != model.enabled and not run_now else None
                record = automation.commit(Kind.SCHEDULE, read, outcome.new_state, enabled_change)
                if record is None:
                    continue
                automation.queue([r.to_dict() for r in outcome.handler_requests])
                automation.repository.put(Kind.SCHEDULE, record)
                if enabled_change is not None:
                    automation.announce(Kind.SCHEDULE, record)
                if registry is not None and not run_now:
                    self._re_arm(registry, record, scheduled, location, enabled_change is not None)
                return ScheduleRun(schedule_id, outcome)
        logger.warning("schedule state kept changing; run given up", extra={"schedule": schedule_id})
        return ScheduleRun(schedule_id, None, "state kept changing")

    def _re_arm(self, registry: ScheduleRegistry, record: Record, scheduled: datetime, location: Location | None,
                disabled: bool) -> None:
        """One-shot ``at(...)`` schedules get their next run; a schedule that disabled itself loses its entry."""
        if disabled:
            sync_schedule(registry, record, now=scheduled, location=location)
            return
        try:
            expression = to_scheduler_expression(record, after=scheduled, location=location)
        except ScheduleError:
            expression = None
        if expression is None or expression.one_shot:
            # at(...) has whole seconds: the run it fired may lie a fraction after it (a sunrise at :17.8 fires at
            # :17), and must not be found again as the next one
            after = max(scheduled, self.automation.now()) + AT_PRECISION
            sync_schedule(registry, record, now=after, location=location)

    def run_now(self, schedule_ids: Iterable[str]) -> list[ScheduleRun]:
        now = self.automation.now()
        return [self.fire(schedule_id, now, run_now=True) for schedule_id in schedule_ids]


# --------------------------------------------------------------------------------------------- the target


class ScheduledFunction:
    """The single target of every registry entry (EventBridge Scheduler, the local timer)."""

    def __init__(self, automation: Automation, tasks: TaskFunction, schedules: ScheduleFunction,
                 jobs: SystemJobs | None = None) -> None:
        self.automation = automation
        self.tasks = tasks
        self.schedules = schedules
        self.jobs = jobs

    def handle(self, payload: Mapping[str, Any]) -> Record:
        """``{"kind": "schedule"|"task", "id", "action"?, "scheduledTime"?}`` → one run; bad payloads are
        answered, logged and dropped (a retry could not fix them)."""
        if not isinstance(payload, Mapping):
            logger.warning("scheduler payload is not an object")
            return {"error": "payload must be an object"}
        kind, entity_id = payload.get("kind"), payload.get("id")
        scheduled = parse_instant(payload.get("scheduledTime")) or self.automation.now()
        if kind == "system" and self.jobs is not None:
            return {"kind": kind, "job": payload.get("job"), "result": self.jobs.run(str(payload.get("job")))}
        if not isinstance(entity_id, str) or not entity_id:
            logger.warning("scheduler payload without id", extra={"payload": dict(payload)})
            return {"error": "payload needs an 'id'"}
        if kind == "schedule":
            return {"kind": kind, **self.schedules.fire(entity_id, scheduled).to_dict()}
        if kind == "task":
            return {"kind": kind, **self.tasks.on_timer(payload, scheduled).to_dict()}
        logger.warning("scheduler payload of unknown kind", extra={"payload": dict(payload)})
        return {"error": f"unknown kind {kind!r}"}


# --------------------------------------------------------------------------------------------- system jobs


class NodeStateJob:
    """Every few minutes: nodes silent past their inactive duration are marked down and announced. The default
    inactive duration is the settings' ``nodeStateJob.inactiveDuration`` (a node's label overrides it)."""

    def __init__(self, repository: Repository, bus: EventBus, *, clock: Callable[[], int] = now_ms,
                 settings: SettingsCache | None = None) -> None:
        self.repository = repository
        self.bus = bus
        self.clock = clock
        self.settings = settings or SettingsCache(repository)

    def run(self) -> list[Record]:
        up = self.repository.query(Kind.NODE, ListQuery(filters=[Filter("state.status", "eq", "up")], limit=0)).data
        changed = nodes_gone_silent(up, self.clock(), self.settings.settings().inactive_ms())
        if changed:
            self.repository.put_many(Kind.NODE, changed)
            self.bus.publish([bus_event(event("updated", Kind.NODE, record)) for record in changed])
            logger.info("nodes marked down", extra={"nodes": [r["id"] for r in changed]})
        return changed


def discover_nodes(repository: Repository, downlink: DownlinkSender) -> list[str]:
    """The MySensors discover broadcast (``I_DISCOVER_REQUEST``) to every enabled gateway that speaks it; the
    nodes answer, which refreshes their ``lastSeen`` and finds new ones. Returns the gateway ids."""
    gateways = repository.query(Kind.GATEWAY, ListQuery(limit=0)).data
    downlinks: list[Downlink] = []
    for gateway in gateways:
        if gateway.get("enabled", True) is False:
            continue
        try:
            downlinks.append(gateway_action(gateway, "discover_nodes"))
        except ActionError:
            continue  # Tasmota and generic gateways have no discover
    if downlinks:
        downlink.send(downlinks)
    return [d.gateway_id for d in downlinks]


def resync_schedules(registry: ScheduleRegistry, repository: Repository, location: Location | None,
                     now: datetime, *, types: frozenset[str] | None = None) -> int:
    """Put every enabled schedule's trigger again (optionally only some types, e.g. sun schedules after the
    location changed); one that fails is logged, not fatal for the rest. Returns how many are registered."""
    registered = 0
    for record in repository.query(Kind.SCHEDULE, ListQuery(limit=0)).data:
        if record.get("enabled", True) is False or (types is not None and record.get("type") not in types):
            continue
        try:
            registered += sync_schedule(registry, record, now=now, location=location)
        except Exception:
            logger.exception("schedule re-sync failed", extra={"schedule": record.get("id")})
    return registered


SUN_TYPES: Final = frozenset({"sunrise", "sunset"})


class SystemJobs:
    """Node state, node discovery and the daily sun re-arm, each when due by the settings' intervals.

    Locally the stack's jobs thread calls ``tick`` every few seconds; in AWS scheduled Lambdas call ``run`` with
    a fixed rate (deploy-time), while the settings still decide the inactive duration and whether discovery
    runs."""

    def __init__(self, automation: Automation, downlink: DownlinkSender) -> None:
        self.automation = automation
        self.downlink = downlink
        assert automation.settings is not None
        self.node_state = NodeStateJob(automation.repository, automation.bus, settings=automation.settings,
                                       clock=lambda: int(automation.now().timestamp() * 1000))
        self._last: dict[str, datetime] = {}
        self._sun_day: str | None = None

    def run(self, job: str) -> Any:
        if job == "node_state":
            return [record["id"] for record in self.node_state.run()]
        if job == "node_discover":
            settings = self._settings()
            return discover_nodes(self.automation.repository, self.downlink) \
                if settings.node_discover_job.enabled else []
        if job == "sun":
            return self.re_arm_sun()
        raise ValueError(f"unknown system job {job!r}")

    def _settings(self) -> SystemSettings:
        assert self.automation.settings is not None
        return self.automation.settings.settings()

    def re_arm_sun(self) -> int:
        """Sun schedules again from the current location (the sun moves; the location may have changed)."""
        registry = self.automation.registry
        if registry is None:
            return 0
        return resync_schedules(registry, self.automation.repository, self.automation.location(),
                                self.automation.now(), types=SUN_TYPES)

    def tick(self) -> list[str]:
        """Run the jobs that are due (the local stack); returns their names. A failing job is logged."""
        now = self.automation.now()
        settings = self._settings()
        due: list[str] = []
        intervals = {"node_state": settings.node_state_job.execution_interval,
                     "node_discover": settings.node_discover_job.execution_interval}
        for job, interval in intervals.items():
            last = self._last.get(job)
            if last is None:
                self._last[job] = now  # first tick: start counting, as a timer would
                continue
            if now - last >= parse_duration(interval):
                due.append(job)
        location = self.automation.location()
        day = now.astimezone(location.tz).date().isoformat() if location is not None else None
        if day is not None and day != self._sun_day:
            if self._sun_day is not None:
                due.append("sun")
            self._sun_day = day
        for job in due:
            self._last[job] = now
            try:
                self.run(job)
            except Exception:
                logger.exception("system job failed", extra={"job": job})
        return due


def reload_registry(automation: Automation) -> dict[str, int]:
    """Put every enabled schedule's and interval task's trigger again and drop entries nothing owns (after a
    restart of the local stack, or on ``POST /api/{task,schedule}/reload``)."""
    registry = automation.registry
    if registry is None:
        return {"schedules": 0, "tasks": 0, "removed": 0}
    now = automation.now()
    schedules = resync_schedules(registry, automation.repository, automation.location(), now)
    tasks = 0
    task_ids: set[str] = set()
    for record in automation.repository.query(Kind.TASK, ListQuery(limit=0)).data:
        task_ids.add(str(record.get("id")))
        try:
            tasks += sync_task(registry, record, now=now)
        except Exception:
            logger.exception("task re-sync failed", extra={"task": record.get("id")})
        re_enable_at = from_iso((record.get("state") or {}).get("reEnableAt"))
        if record.get("enabled") is False and re_enable_at is not None:
            due = max(re_enable_at, now + AT_PRECISION)  # overdue (the stack was down): at once
            registry.put(timer_name(str(record["id"]), RE_ENABLE), at_expression(due, UTC), "UTC",
                         {"kind": "task", "id": str(record["id"]), "action": RE_ENABLE}, None, None)
    enabled_schedules = {str(r["id"]) for r in automation.repository.query(Kind.SCHEDULE, ListQuery(limit=0)).data
                         if r.get("enabled", True) is not False}
    owned = {registry_name("schedule", i) for i in enabled_schedules} | {registry_name("task", i) for i in task_ids}
    removed = 0
    for name in registry.names():
        owner, _, _ = name.partition(".")
        if owner not in owned and owner.partition("-")[0] in ("schedule", "task"):
            registry.delete(name)
            removed += 1
    return {"schedules": schedules, "tasks": tasks, "removed": removed}



_forward: ForwardPayloadFunction | None = None
_forward_lock = threading.Lock()


def get_forward_function() -> ForwardPayloadFunction:
    """The forward payload function over this process's services, built once like them."""
    global _forward
    with _forward_lock:
        if _forward is None:
            from .config import get_services

            services = get_services()
            _forward = ForwardPayloadFunction(services.repository, services.downlink)
        return _forward


def reset_forward_function() -> None:
    global _forward
    with _forward_lock:
        _forward = None


@dataclass(slots=True)
class AutomationFunctions:
    """The task, schedule, scheduler-target and system-job functions over one process's services."""

    automation: Automation
    tasks: TaskFunction
    schedules: ScheduleFunction
    jobs: SystemJobs
    scheduled: ScheduledFunction


_functions: AutomationFunctions | None = None


def build_functions(services: Any, *, now: Callable[[], datetime] = utcnow) -> AutomationFunctions:
    """The automation functions over ``services`` (a ``config.Services``): its repository, bus, downlink, handler
    queue and schedule registry, a urllib webhook resolver, and the settings (with ``extras["location"]`` as the
    fallback location)."""
    from .adapters.webhook_urllib import UrllibWebhookResolver

    extras = services.extras
    settings = SettingsCache(services.repository, fallback_location=lambda: extras.get("location"))
    automation = Automation(services.repository, services.bus, services.handler_queue, services.schedules,
                            UrllibWebhookResolver(), settings, now=now,
                            queue_source=lambda: services.handler_queue)
    tasks = TaskFunction(automation)
    schedules = ScheduleFunction(automation)
    jobs = SystemJobs(automation, services.downlink)
    return AutomationFunctions(automation, tasks, schedules, jobs, ScheduledFunction(automation, tasks, schedules,
                                                                                       jobs))


def get_functions() -> AutomationFunctions:
    """The automation functions over this process's services, built once like them (and again when the
    services were replaced)."""
    global _functions
    from .config import get_services

    services = get_services()
    with _forward_lock:
        if _functions is None or _functions.automation.repository is not services.repository:
            _functions = build_functions(services)
        return _functions


def reset_functions() -> None:
    global _functions
    with _forward_lock:
        _functions = None
