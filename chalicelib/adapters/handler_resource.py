"""Resource handler calls: set a field (a downlink, as ``POST /api/action`` sends it), a node or gateway action,
enable, disable or reload a task, schedule, handler, forward payload or gateway, or write a data repository at a
key path; by quick id, or on every resource of a type carrying some labels (MyController v2's
``resource_by_labels``).

Field values and node/gateway actions go through ``core.actions`` and the downlink port, exactly the API's path;
the stored value changes when the device reports back. Enable/disable store the resource (``modifiedOn``), announce
it on the bus (handlers redacted) and bring the schedule registry in step for tasks and schedules; ``reload``
re-syncs their registry entry. Applying the same call twice leaves the same state (at-least-once safe). A missing
resource or an action its provider cannot take is not retried; a failing downlink or registry is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.core import actions as core_actions
from chalicelib.core import data_repository
from chalicelib.core.automation.clock import Location
from chalicelib.core.automation.handlers import MAX_LABELLED, redact
from chalicelib.core.automation.scheduler_sync import sync_schedule, sync_task
from chalicelib.core.model import EventType, Kind, Record, event, now_iso, parse_quick_id
from chalicelib.core.ports import (
    DownlinkSender,
    EventBus,
    Filter,
    HandlerCallError,
    ListQuery,
    Repository,
    ScheduleRegistry,
    Sort,
    bus_event,
)


def _is_mysensors(gateway: Record) -> bool:
    try:
        return core_actions.provider_of(gateway) == core_actions.MYSENSORS
    except core_actions.ActionError:
        return False


class ResourceExecutor:
    def __init__(self, repository: Repository, downlink: DownlinkSender, bus: EventBus | None = None,
                 schedules: ScheduleRegistry | None = None,
                 location: Callable[[], Location | None] = lambda: None) -> None:
        self.repository = repository
        self.downlink = downlink
        self.bus = bus
        self.schedules = schedules
        self.location = location

    def _find(self, kind: Kind, entity_id: str) -> Record:
        record = self.repository.get(kind, entity_id)
        if record is None:
            raise HandlerCallError(f"resource: {kind.value} {entity_id!r} does not exist", retryable=False)
        return record

    def _gateway(self, record: Record) -> Record:
        return self._find(Kind.GATEWAY, str(record.get("gatewayId") or record.get("id")))

    def _send(self, make: Callable[[], Any]) -> None:
        try:
            downlink = make()
        except core_actions.ActionError as error:
            raise HandlerCallError(f"resource: {error}", retryable=False) from None
        try:
            self.downlink.send([downlink])
        except Exception as error:  # the downlink port's errors vary by adapter; all are worth a retry
            raise HandlerCallError(f"resource: downlink failed: {type(error).__name__}: {error}") from None

    def _node_action(self, node_id: str, command: str) -> None:
        node = self._find(Kind.NODE, node_id)
        gateway = self._gateway(node)
        mysensors = _is_mysensors(gateway)
        if command == "firmware_update" and mysensors:
            raise HandlerCallError("resource: a MySensors firmware_update hands the edge a URL of the firmware: run "
                                   "it from the API or the console", retryable=False)
        if command == "reset":
            self.repository.put(Kind.NODE, {**core_actions.reset_node_labels(node), "modifiedOn": now_iso()})
            if mysensors:  # the edge answers the bootloader's next config request with the erase
                self._send(lambda: core_actions.erase_eeprom(gateway, node))
        self._send(lambda: core_actions.node_action(gateway, node, command))

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if params.get("labels") and not params.get("quickId"):
            return self._by_labels(spec, params)
        quick = parse_quick_id(str(params["quickId"]))
        payload = params.get("payload")
        command = str(payload).strip().lower() if payload is not None else ""
        if quick.kind == Kind.DATA_REPOSITORY:
            record = self._find(Kind.DATA_REPOSITORY, quick.id)
            try:
                written = data_repository.write(record, str(params.get("keyPath") or ""), payload)
            except data_repository.DataRepositoryError as error:
                raise HandlerCallError(f"resource: {error}", retryable=False) from None
            if written is None:
                return {"action": "skipped", "quickId": str(quick), "reason": "read-only"}
            written = {**written, "modifiedOn": now_iso()}
            self.repository.put(Kind.DATA_REPOSITORY, written)
            if self.bus is not None:
                self.bus.publish([bus_event(event(EventType.UPDATED, Kind.DATA_REPOSITORY, written))])
            return {"action": "set", "quickId": str(quick)}
        if quick.kind == Kind.FIELD:
            field = self._find(Kind.FIELD, quick.id)
            gateway = self._gateway(field)
            self._send(lambda: core_actions.set_field(gateway, field, payload))
            return {"action": "set", "quickId": str(quick)}
        if quick.kind == Kind.NODE:
            self._node_action(quick.id, command)
            return {"action": command, "quickId": str(quick)}
        if quick.kind == Kind.GATEWAY and command in core_actions.GATEWAY_ACTIONS:
            gateway = self._find(Kind.GATEWAY, quick.id)
            if gateway.get("enabled", True):
                self._send(lambda: core_actions.gateway_action(gateway, command))
            return {"action": command, "quickId": str(quick)}
        if command not in ("enable", "disable", "reload"):
            raise HandlerCallError(f"resource: {command!r} is not an action for a {quick.kind.value}",
                                   retryable=False)
        record = self._find(quick.kind, quick.id)
        if command != "reload":
            enabled = command == "enable"
            if record.get("enabled", True) is not enabled:
                record = {**record, "enabled": enabled, "modifiedOn": now_iso()}
                self.repository.put(quick.kind, record)
                if self.bus is not None:
                    public = redact(record) if quick.kind == Kind.HANDLER else record
                    self.bus.publish([bus_event(event(EventType.UPDATED, quick.kind, public))])
        self._sync(quick.kind, record)
        return {"action": command, "quickId": str(quick)}

    def _by_labels(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """MyController v2's ``resource_by_labels``: the same action on every resource of the type carrying all the
        labels (at most ``MAX_LABELLED``, by id); none is not an error."""
        kind = Kind(str(params.get("resourceType")))
        query = ListQuery(filters=[Filter(f"labels.{k}", "eq", v) for k, v in dict(params["labels"]).items()],
                          sort_by=[Sort("id")], limit=MAX_LABELLED)
        ids = [str(record["id"]) for record in self.repository.query(kind, query).data]
        for entity_id in ids:
            self.execute(spec, {**params, "labels": {}, "quickId": f"{kind.value}:{entity_id}"})
        return {"action": "labels", "resourceType": kind.value, "count": len(ids)}

    def _sync(self, kind: Kind, record: Record) -> None:
        if self.schedules is None or kind not in (Kind.TASK, Kind.SCHEDULE):
            return
        try:
            if kind == Kind.SCHEDULE:
                sync_schedule(self.schedules, record, location=self.location())
            else:
                sync_task(self.schedules, record)
        except Exception as error:  # another service: retry
            raise HandlerCallError(f"resource: schedule registry: {type(error).__name__}: {error}") from None
