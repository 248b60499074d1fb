"""Forward payload: a field's new value carried to other fields (the reference's forward payload mappings).

In AWS an EventBridge rule sends each ``field.updated`` event to the ``forward_payload`` Lambda through its SQS
queue (``bus_consumers.forward_payload``); locally the in-process bus calls ``ForwardPayloadFunction.handle``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..core.automation.forward import ForwardPlan, index_mappings, plan_forward_report
from ..core.automation.models import ForwardPayload
from ..core.automation.tasks import (
    RepositoryLookup,
)
from ..core.model import Kind
from ..core.ports import (
    EVENT_SOURCE,
    BusEvent,
    DownlinkSender,
    EventBus,
    ListQuery,
    Repository,
)
from ..observability import SERVICE, Logger

logger = Logger(service=SERVICE, child=True)

FORWARD_PATTERN: Final[dict[str, Any]] = {"source": [EVENT_SOURCE], "detail-type": ["field.updated"]}
"""The events forward payload reacts to (the same pattern the EventBridge rule in infra/ uses)."""
MAPPINGS_TTL_S: Final = 5.0
"""How long a process keeps the mapping index: changes to forward payloads apply within this time."""


def load_mappings(repository: Repository) -> dict[str, list[ForwardPayload]]:
    """The enabled mappings as stored now, by source field quick id; one that does not validate is logged and
    skipped, not fatal for the others."""
    valid = []
    for record in repository.query(Kind.FORWARD_PAYLOAD, ListQuery(limit=0)).data:
        try:
            valid.append(ForwardPayload.model_validate(record))
        except ValueError as error:
            logger.warning("forward payload mapping skipped", extra={"mapping": record.get("id"),
                                                                     "reason": str(error)[:300]})
    return index_mappings(valid)


def forwarded(detail_type: str | None, detail: Mapping[str, Any], index: Mapping[str, list[ForwardPayload]]) -> bool:
    """Whether an event is one forward payload acts on (``FORWARD_PATTERN``, a field's update) with a mapping in
    ``index`` from its field: what a publisher asks (``functions/interest.py``)."""
    entity_id = detail.get("entityId")
    return (detail_type == "field.updated" and detail.get("entityType") == Kind.FIELD.value
            and isinstance(entity_id, str) and f"{Kind.FIELD.value}:{entity_id}" in index)


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
                self._index = load_mappings(self.repository)
                self._loaded_at = now
            return list(self._index.get(source_quick_id, ()))

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
