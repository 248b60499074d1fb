"""Domain events travel to EventBridge packed: many events one entry, because EventBridge bills per entry (per
64 KB of it) and a rule invokes its target once per entry.

A pack is one entry of one source whose ``detail`` is ``{"types": [detail-types in it], "watched": bool, "events":
[{"detail-type", "detail"}, …]}``. Rules still route by type: EventBridge matches a pattern value against an array
by any element, so ``{"detail": {"types": ["field.updated"]}}`` takes every pack holding a ``field.updated``
(``packed_pattern`` turns a consumer's per-event pattern into its pack pattern), and each consumer then applies
its own per-event pattern to what the pack holds (``unpack``), exactly as the rule did to single events. ``watched``
says whether some live websocket connection subscribed to an event of the pack (or it must reach the notifier
anyway: a revocation): the notifier's rule asks for it, so nobody listening costs no notify invocation. ``to`` names
the automation consumers (``AUTOMATION_CONSUMERS``: forward payload, tasks) some event of the pack is for: their rules
ask for their name, so a pack no task and no forward payload wants reaches neither function. A publisher that does
not ask (``consumers=None``) addresses every pack to all of them; one that asks puts on the bus only the events
somebody wants (watched, or wanted by a consumer): the rest is not published at all.

The local bus delivers events one by one and never packs. Pure Python, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .event_pattern import compile_pattern
from .ports import BusEvent

EVENTS_KEY: Final = "events"
TYPES_KEY: Final = "types"
WATCHED_KEY: Final = "watched"
TO_KEY: Final = "to"
AUTOMATION_CONSUMERS: Final = ("forward_payload", "tasks")
"""The consumers a pack's ``to`` addresses (the bus consumers' function names, ``infra/template.py``)."""
PACK_OVERHEAD: Final = len('{"types":[],"watched":false,"to":["forward_payload","tasks"],"events":[]}')
ITEM_OVERHEAD: Final = len('{"detail-type":"","detail":},')

Audience = Callable[[Mapping[str, Any]], bool]
"""Whether some live websocket connection wants an event's ``detail`` (``services.websocket.Audience``)."""
Consumers = Callable[[BusEvent], Collection[str]]
"""Which of ``AUTOMATION_CONSUMERS`` want an event (``functions.interest.ConsumerInterest``)."""


@dataclass(slots=True)
class Pack:
    """Events of one source bound for one entry, with the bytes their detail will take."""

    source: str
    events: list[BusEvent]
    items: list[str]
    """Each event as its JSON item of ``events``."""
    size: int
    watched: bool
    to: set[str] = field(default_factory=set)
    """The automation consumers some event of the pack is for."""

    @property
    def detail_type(self) -> str:
        """The entry's detail-type: the events' own when they share one (what a reader of the bus expects),
        ``events`` otherwise."""
        types = {event.detail_type for event in self.events}
        return types.pop() if len(types) == 1 else EVENTS_KEY

    def detail_json(self) -> str:
        types = sorted({event.detail_type for event in self.events})
        return (f'{{"{TYPES_KEY}":{_dumps(types)},"{WATCHED_KEY}":{"true" if self.watched else "false"},'
                f'"{TO_KEY}":{_dumps(sorted(self.to))},"{EVENTS_KEY}":[{",".join(self.items)}]}}')


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def item_json(event: BusEvent) -> str:
    return f'{{"detail-type":{_dumps(event.detail_type)},"detail":{_dumps(event.detail)}}}'


def pack_events(events: Sequence[BusEvent], budget: int, audience: Audience | None = None,
                consumers: Consumers | None = None) -> list[Pack]:
    """The events in packs of one source and at most ``budget`` bytes of detail, in order within a source. An
    event too big for any pack gets one of its own (the caller trims or refuses it). Without an ``audience``
    every pack is watched (the notifier sees everything, as before packing); without ``consumers`` every pack is
    addressed to all ``AUTOMATION_CONSUMERS``. With either, an event nobody wants (not watched, no consumer) is
    left out: it is not published."""
    packs: list[Pack] = []
    current: dict[str, Pack] = {}
    everyone = frozenset(AUTOMATION_CONSUMERS)
    for event in events:
        watched = audience is None or audience(event.detail)
        to = everyone if consumers is None else consumers(event)
        if not watched and not to:
            continue
        item = item_json(event)
        size = len(item.encode("utf-8")) + 1 + len(event.detail_type) + 3
        pack = current.get(event.source)
        if pack is None or pack.size + size > budget:
            pack = Pack(event.source, [], [], PACK_OVERHEAD, False)
            packs.append(pack)
            current[event.source] = pack
        pack.events.append(event)
        pack.items.append(item)
        pack.size += size
        pack.watched = pack.watched or watched
        pack.to.update(to)
    return packs


def unpack(detail: Mapping[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """A bus event's ``(detail-type, detail)`` pairs: those a pack holds, or the event itself (its detail-type
    unknown here: ``None``)."""
    items = detail.get(EVENTS_KEY)
    if isinstance(items, list) and TYPES_KEY in detail:
        return [(str(item.get("detail-type")), item["detail"]) for item in items
                if isinstance(item, dict) and isinstance(item.get("detail"), dict)]
    return [(None, dict(detail))]


def is_packed(detail: Mapping[str, Any]) -> bool:
    return isinstance(detail.get(EVENTS_KEY), list) and TYPES_KEY in detail


def packed_pattern(pattern: Mapping[str, Any], *, watched: bool = False, to: str | None = None) -> dict[str, Any]:
    """The rule pattern of packs for a per-event ``pattern``: ``source`` as it is, ``detail-type`` on
    ``detail.types``, ``watched`` asks for watched packs only and ``to`` for packs addressed to that consumer. A
    ``detail`` sub-pattern is left to the consumer (``selector``): the rule routes packs by source and type, the
    consumer takes exactly the events it wants."""
    result: dict[str, Any] = {key: value for key, value in pattern.items() if key not in ("detail-type", "detail")}
    detail: dict[str, Any] = {}
    if "detail-type" in pattern:
        detail[TYPES_KEY] = list(pattern["detail-type"])
    if watched:
        detail[WATCHED_KEY] = [True]
    if to is not None:
        detail[TO_KEY] = [to]
    if detail:
        result["detail"] = detail
    return result


def selector(pattern: Mapping[str, Any]) -> Callable[[str, str | None, Mapping[str, Any]], bool]:
    """A consumer's test of one event of a pack against its per-event pattern (``source`` is the pack's)."""
    match = compile_pattern(dict(pattern))

    def wanted(source: str, detail_type: str | None, detail: Mapping[str, Any]) -> bool:
        if detail_type is None:
            return True  # a single event: its rule chose it
        return match({"source": source, "detail-type": detail_type, "detail": detail})

    return wanted


def events_of(document: Mapping[str, Any], wanted: Callable[[str, str | None, Mapping[str, Any]], bool]
              ) -> list[dict[str, Any]]:
    """The details a consumer takes from one bus event (a pack or a single event) as EventBridge delivered it."""
    detail = document.get("detail")
    if not isinstance(detail, dict):
        return []
    source = str(document.get("source") or "")
    return [inner for detail_type, inner in unpack(detail) if wanted(source, detail_type, inner)]
