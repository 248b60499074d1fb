"""Forward payload, after MyController v2: every new value of a field goes to other fields, on any gateway.

On a field ``updated`` event, each enabled mapping whose ``srcFieldId`` is that field sends the value to its
``dstFieldId`` as a downlink, built by ``core.actions.set_field`` for the destination's gateway and provider (so
a MySensors switch can follow a Tasmota relay). An optional ``template`` transforms the value first (``value``,
``field`` and ``event`` are in scope, e.g. ``{{ 'ON' if value else 'OFF' }}`` or ``{{ value * 1.8 + 32 }}``).
``created`` events do not forward, as in the reference; a field's first value arrives with ``created``.

Loops: A→B and B→A would echo a value forever (each device reports back, which is an update, which forwards).
``find_loop``/``would_loop`` check the mapping graph when a mapping is saved; the API refuses one that closes a
cycle. Every mapping counts, enabled or not, so that enabling one never needs another check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink

from ..actions import ActionError, set_field
from ..model import Kind, Record
from .clock import Location
from .models import ForwardPayload, quick_id_of
from .tasks import EventLike, ResourceLookup, normalize_event
from .templates import ENGINE, TemplateEngine, TemplateError

FORWARD_EVENT_TYPES: Final = ("updated",)


@dataclass(frozen=True, slots=True)
class ForwardFailure:
    """A mapping that could not send, and why (for logs and the mapping's state)."""

    mapping_id: str
    reason: str


@dataclass(slots=True)
class ForwardPlan:
    downlinks: list[Downlink] = field(default_factory=list)
    failures: list[ForwardFailure] = field(default_factory=list)


def as_mapping(mapping: ForwardPayload | Record) -> ForwardPayload:
    return mapping if isinstance(mapping, ForwardPayload) else ForwardPayload.model_validate(mapping)


def index_mappings(mappings: Iterable[ForwardPayload | Record]) -> dict[str, list[ForwardPayload]]:
    """Enabled mappings by source field quick id (build once per mapping change, look up per event)."""
    index: dict[str, list[ForwardPayload]] = {}
    for mapping in (as_mapping(m) for m in mappings):
        if mapping.enabled:
            index.setdefault(mapping.src_field_id, []).append(mapping)
    return index


def plan_forward_report(event: EventLike, mappings: Iterable[ForwardPayload | Record], lookup: ResourceLookup, *,
                        now: datetime | None = None, location: Location | None = None,
                        engine: TemplateEngine = ENGINE) -> ForwardPlan:
    """The downlinks a field event forwards, and the mappings that could not send."""
    plan = ForwardPlan()
    normalized = normalize_event(event)
    if normalized is None or normalized.get("entityType") != Kind.FIELD.value \
            or normalized.get("type") not in FORWARD_EVENT_TYPES:
        return plan
    entity = normalized.get("entity")
    if not isinstance(entity, dict) or not entity.get("id"):
        return plan
    current = entity.get("current")
    value = current.get("value") if isinstance(current, dict) else None
    if value is None:
        return plan
    source = f"{Kind.FIELD.value}:{entity['id']}"
    gateways: dict[str, Record | None] = {}
    for mapping in (as_mapping(m) for m in mappings):
        if not mapping.enabled or mapping.src_field_id != source:
            continue
        try:
            plan.downlinks.append(_downlink(mapping, value, entity, normalized, lookup, gateways, now, location,
                                            engine))
        except (ActionError, TemplateError, LookupError) as error:
            plan.failures.append(ForwardFailure(mapping.id, str(error)))
    return plan


def plan_forward(event: EventLike, mappings: Iterable[ForwardPayload | Record], lookup: ResourceLookup, *,
                 now: datetime | None = None, location: Location | None = None,
                 engine: TemplateEngine = ENGINE) -> list[Downlink]:
    """The downlinks a field ``updated`` event forwards (mappings that cannot send are left out; use
    ``plan_forward_report`` to see why)."""
    return plan_forward_report(event, mappings, lookup, now=now, location=location, engine=engine).downlinks


def _downlink(mapping: ForwardPayload, value: Any, source: Record, event: Record, lookup: ResourceLookup,
              gateways: dict[str, Record | None], now: datetime | None, location: Location | None,
              engine: TemplateEngine) -> Downlink:
    destination = lookup.get_by_quick_id(mapping.dst_field_id)
    if destination is None:
        raise LookupError(f"destination {mapping.dst_field_id} does not exist")
    gateway_id = str(destination.get("gatewayId") or "")
    if gateway_id not in gateways:
        gateways[gateway_id] = lookup.get_by_quick_id(f"{Kind.GATEWAY.value}:{gateway_id}")
    gateway = gateways[gateway_id]
    if gateway is None:
        raise LookupError(f"gateway {gateway_id!r} of {mapping.dst_field_id} does not exist")
    if gateway.get("enabled") is False:
        raise LookupError(f"gateway {gateway_id!r} of {mapping.dst_field_id} is disabled")
    payload = value
    if mapping.template:
        payload = engine.render(mapping.template, {"value": value, "field": source, "event": event}, now=now,
                                location=location).strip()
    return set_field(gateway, destination, payload)


# --------------------------------------------------------------------------------------------- loops


def _edges(mappings: Iterable[ForwardPayload | Record | Mapping[str, Any]], skip_id: str | None) -> dict[str,
                                                                                                       set[str]]:
    graph: dict[str, set[str]] = {}
    for mapping in mappings:
        if isinstance(mapping, ForwardPayload):
            mapping_id, source, destination = mapping.id, mapping.src_field_id, mapping.dst_field_id
        else:
            mapping_id = str(mapping.get("id"))
            source = quick_id_of(str(mapping.get("srcFieldId")), Kind.FIELD, "srcFieldId")
            destination = quick_id_of(str(mapping.get("dstFieldId")), Kind.FIELD, "dstFieldId")
        if mapping_id == skip_id:
            continue
        graph.setdefault(source, set()).add(destination)
    return graph


def find_loop(mappings: Iterable[ForwardPayload | Record], new_mapping: ForwardPayload | Record) -> list[str] | None:
    """The cycle ``new_mapping`` would close among the mappings (field quick ids, first = last), or ``None``.

    A mapping with the same id as the new one is the one being replaced and does not count.
    """
    if not isinstance(new_mapping, ForwardPayload):
        source = quick_id_of(str(new_mapping.get("srcFieldId")), Kind.FIELD, "srcFieldId")
        destination = quick_id_of(str(new_mapping.get("dstFieldId")), Kind.FIELD, "dstFieldId")
        new_id: str | None = str(new_mapping.get("id")) if new_mapping.get("id") is not None else None
    else:
        source, destination, new_id = new_mapping.src_field_id, new_mapping.dst_field_id, new_mapping.id
    if source == destination:
        return [source, destination]
    graph = _edges(mappings, new_id)
    # Depth-first from the new destination: reaching the new source closes a cycle.
    parents: dict[str, str] = {destination: source}
    stack = [destination]
    while stack:
        node = stack.pop()
        for following in sorted(graph.get(node, ())):
            if following in parents:
                continue
            parents[following] = node
            if following == source:
                path = [source]
                step = node
                while step != source:
                    path.append(step)
                    step = parents[step]
                path.append(source)
                return list(reversed(path))
            stack.append(following)
    return None


def would_loop(mappings: Iterable[ForwardPayload | Record], new_mapping: ForwardPayload | Record) -> bool:
    """Whether saving ``new_mapping`` would close a forwarding loop."""
    return find_loop(mappings, new_mapping) is not None
