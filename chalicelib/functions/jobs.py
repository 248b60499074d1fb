"""The system jobs: node state, node discovery and the daily sun re-arm (scheduled Lambdas in AWS, the local
stack's jobs thread locally)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink

from ..core.actions import ActionError, gateway_action
from ..core.automation.clock import parse_duration
from ..core.automation.node_state import nodes_gone_silent
from ..core.conflicts import update
from ..core.model import Kind, Record, event, now_ms
from ..core.ports import (
    DownlinkSender,
    EventBus,
    Filter,
    ListQuery,
    Repository,
    bus_event,
)
from ..core.settings import SystemSettings
from ..observability import SERVICE, Logger
from .automation import Automation, SettingsCache
from .schedules import resync_schedules

logger = Logger(service=SERVICE, child=True)

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
        """Each node marked down on the record as stored when written (conditional on its version): one an ingest
        batch heard from meanwhile stays up."""
        up = self.repository.query(Kind.NODE, ListQuery(filters=[Filter("state.status", "eq", "up")], limit=0)).data
        now, inactive = self.clock(), self.settings.settings().inactive_ms()

        def down(current: Record | None) -> Record | None:
            again = nodes_gone_silent([current], now, inactive) if current is not None else []
            return again[0] if again else None

        changed = [record for node in nodes_gone_silent(up, now, inactive)
                   if (record := update(self.repository, Kind.NODE, str(node["id"]), down)) is not None]
        if changed:
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
