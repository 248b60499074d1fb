"""The scheduler's target: EventBridge Scheduler (or the local timer) invokes ``ScheduledFunction.handle`` for
every schedule, interval task, task timer and system job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.model import Record
from ..observability import SERVICE, Logger
from .automation import Automation, parse_instant
from .jobs import SystemJobs
from .schedules import ScheduleFunction
from .tasks import TaskFunction

logger = Logger(service=SERVICE, child=True)

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
