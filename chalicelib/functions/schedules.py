"""Schedules and the scheduler's target: EventBridge Scheduler (or the local timer) invokes ``ScheduledFunction``
for every schedule, interval task and one-shot re-check; ``reload_registry`` puts every trigger again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..core.automation.clock import Location, from_iso, iso
from ..core.automation.models import Schedule, Validity
from ..core.automation.scheduler_sync import registry_name, sync_schedule, sync_task
from ..core.automation.schedules import (
    ScheduleError,
    ScheduleOutcome,
    at_expression,
    fire_schedule,
    to_scheduler_expression,
)
from ..core.model import Kind, Record
from ..core.ports import (
    ListQuery,
    Repository,
    ScheduleRegistry,
)
from ..observability import SERVICE, Logger
from .automation import AT_PRECISION, MAX_ATTEMPTS, RE_ENABLE, Automation, timer_name

logger = Logger(service=SERVICE, child=True)

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
                committed = automation.commit(Kind.SCHEDULE, read, outcome.new_state, enabled_change)
                if committed is None:
                    continue
                record, version = committed
                automation.queue([r.to_dict() for r in outcome.handler_requests])
                if not automation.store(Kind.SCHEDULE, record, version):
                    continue  # written meanwhile: again, on the newer record (the queued requests are idempotent)
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
