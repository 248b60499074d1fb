"""Websocket subscriptions: what each client wants to see, and which clients a domain event goes to.

Unlike the reference, which sends every event to every client, a client subscribes to what it shows:

``{"entityTypes": ["field"], "quickIds": ["field:gw.1.2.V_TEMP", "node:gw.1"], "labels": {"room": "kitchen"},
"eventTypes": ["updated"]}``: every part optional, AND between the parts, OR within a list. An empty filter
matches everything (the reference's behaviour, opt-in).

A device quick id also matches what lies beneath it: ``node:gw.1`` matches the node and its sources and fields,
``gateway:gw`` everything of that gateway (a node page shows its sources and fields; device ids never contain a
dot, so the ancestry is exact). Labels match the entity's own ``labels``. Events of private kinds (users,
tokens) never match anything.

``SubscriptionIndex`` answers "which (connection, subscription) pairs want this event" for many connections
without testing every filter: filters are indexed by quick id, then by entity type; only the rest are scanned.
Pure Python, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import Field as PydField
from pydantic import ValidationError, field_validator

from .errors import DomainError
from .model import ID_DEPTH, PRIVATE_KINDS, CamelModel, Kind

MAX_SUBSCRIPTIONS: Final = 200
"""Subscriptions one connection may hold (a dashboard subscribes per widget)."""
MAX_LIST_ITEMS: Final = 1000
"""Items in one filter list (quick ids, entity types, event types) and labels in one filter."""
MAX_SUBSCRIPTION_ID_LENGTH: Final = 64
EVENT_TYPES: Final = ("created", "updated", "deleted", "requested")
_QUICK_ID: Final = re.compile(r"^[a-z_]{1,32}:[A-Za-z0-9_\-:@~.]{1,600}\Z")
_SUBSCRIPTION_ID: Final = re.compile(r"^[A-Za-z0-9_\-:.@~/]{1,64}\Z")
_DEVICE_KINDS: Final = {kind.value: depth for kind, depth in ID_DEPTH.items()}
_PRIVATE: Final = frozenset(kind.value for kind in PRIVATE_KINDS)


class SubscriptionError(DomainError, ValueError):
    """A subscription request that cannot be accepted; the message is safe to send to the client."""


class SubscriptionFilter(CamelModel):
    """What one subscription wants; ``None`` (or absent) means "any" for that part."""

    model_config = {**CamelModel.model_config, "extra": "forbid"}

    entity_types: list[str] | None = PydField(default=None, max_length=MAX_LIST_ITEMS)
    quick_ids: list[str] | None = PydField(default=None, max_length=MAX_LIST_ITEMS)
    labels: dict[str, str] | None = PydField(default=None, max_length=MAX_LIST_ITEMS)
    event_types: list[str] | None = PydField(default=None, max_length=MAX_LIST_ITEMS)

    @field_validator("entity_types")
    @classmethod
    def _entity_types(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        known = {kind.value for kind in Kind} - _PRIVATE
        unknown = [v for v in values if v not in known]
        if unknown:
            raise ValueError(f"unknown entity type(s) {unknown[:5]}; one of {sorted(known)}")
        return values

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and any(v not in EVENT_TYPES for v in values):
            raise ValueError(f"event types are {', '.join(EVENT_TYPES)}")
        return values

    @field_validator("quick_ids")
    @classmethod
    def _quick_ids(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        bad = [v for v in values if not _QUICK_ID.match(v)]
        if bad:
            raise ValueError(f"not a quick id (<entityType>:<id>): {bad[0][:80]!r}")
        return values

    def matches_rest(self, event: Mapping[str, Any]) -> bool:
        """Event type and labels (the parts the index does not narrow by)."""
        if self.event_types is not None and event.get("type") not in self.event_types:
            return False
        if self.labels:
            entity = event.get("entity")
            labels = entity.get("labels") if isinstance(entity, dict) else None
            if not isinstance(labels, dict):
                return False
            for key, value in self.labels.items():
                if labels.get(key) != value:
                    return False
        return True

    def matches(self, event: Mapping[str, Any]) -> bool:
        """The whole filter against one event (the index's answer must equal this, used by tests and scans)."""
        entity_type = event.get("entityType")
        if not isinstance(entity_type, str) or entity_type in _PRIVATE:
            return False
        if self.entity_types is not None and entity_type not in self.entity_types:
            return False
        if self.quick_ids is not None:
            wanted = set(self.quick_ids)
            if not any(key in wanted for key in event_keys(event)):
                return False
        return self.matches_rest(event)


def parse_filter(data: Any) -> SubscriptionFilter:
    """A filter from client JSON, or ``SubscriptionError`` naming the part at fault."""
    if data is None:
        return SubscriptionFilter()
    if not isinstance(data, dict):
        raise SubscriptionError("filter must be an object")
    try:
        return SubscriptionFilter.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "filter"
        raise SubscriptionError(f"filter.{where}: {first.get('msg', 'invalid')}") from None


def check_subscription_id(value: Any) -> str:
    if not isinstance(value, str) or not _SUBSCRIPTION_ID.match(value):
        raise SubscriptionError(f"id must be a string of 1 to {MAX_SUBSCRIPTION_ID_LENGTH} characters "
                                "(letters, digits, _-:.@~/)")
    return value


def event_keys(event: Mapping[str, Any]) -> list[str]:
    """The quick ids an event answers to: its own, and for device kinds its ancestors' (field → source, node,
    gateway)."""
    entity_type = event.get("entityType")
    entity_id = event.get("entityId")
    if not isinstance(entity_type, str) or not isinstance(entity_id, str):
        return []
    own = f"{entity_type}:{entity_id}"
    depth = _DEVICE_KINDS.get(entity_type)
    if depth is None or depth == 1:
        return [own]
    parts = entity_id.split(".")
    if len(parts) != depth:
        return [own]
    keys = [own]
    for kind, kind_depth in _DEVICE_KINDS.items():
        if kind_depth < depth:
            keys.append(f"{kind}:{'.'.join(parts[:kind_depth])}")
    return keys


@dataclass(slots=True, frozen=True)
class Entry:
    connection_id: str
    subscription_id: str
    filter: SubscriptionFilter


class SubscriptionIndex:
    """Every subscription of every connection, indexed for fast matching. Immutable once built: rebuild (or
    ``add``/``remove`` from one thread) when subscriptions change."""

    def __init__(self) -> None:
        self._by_quick_id: dict[str, list[Entry]] = {}
        self._by_entity_type: dict[str, list[Entry]] = {}
        self._any: list[Entry] = []
        self.size = 0

    @classmethod
    def build(cls, connections: Iterable[tuple[str, Mapping[str, Any]]]) -> SubscriptionIndex:
        """From ``(connection id, {subscription id: filter dict})`` pairs; a stored filter that no longer
        validates is skipped (it was valid when stored)."""
        index = cls()
        for connection_id, subscriptions in connections:
            for subscription_id, data in subscriptions.items():
                try:
                    parsed = data if isinstance(data, SubscriptionFilter) else parse_filter(data)
                except SubscriptionError:
                    continue
                index.add(Entry(connection_id, subscription_id, parsed))
        return index

    def add(self, entry: Entry) -> None:
        self.size += 1
        if entry.filter.quick_ids:
            for quick_id in set(entry.filter.quick_ids):
                self._by_quick_id.setdefault(quick_id, []).append(entry)
        elif entry.filter.quick_ids is not None:  # an empty list: matches nothing
            return
        elif entry.filter.entity_types is not None:
            for entity_type in set(entry.filter.entity_types):
                self._by_entity_type.setdefault(entity_type, []).append(entry)
        else:
            self._any.append(entry)

    def match(self, event: Mapping[str, Any]) -> dict[str, list[str]]:
        """Connection id → the ids of its subscriptions that want this event (in subscription order)."""
        entity_type = event.get("entityType")
        if not isinstance(entity_type, str) or entity_type in _PRIVATE:
            return {}
        found: dict[str, list[str]] = {}
        seen: set[tuple[str, str]] = set()

        def take(entry: Entry) -> None:
            key = (entry.connection_id, entry.subscription_id)
            if key in seen:
                return
            seen.add(key)
            found.setdefault(entry.connection_id, []).append(entry.subscription_id)

        for quick_id in event_keys(event):
            for entry in self._by_quick_id.get(quick_id, ()):
                types = entry.filter.entity_types
                if (types is None or entity_type in types) and entry.filter.matches_rest(event):
                    take(entry)
        for entry in self._by_entity_type.get(entity_type, ()):
            if entry.filter.matches_rest(event):
                take(entry)
        for entry in self._any:
            if entry.filter.matches_rest(event):
                take(entry)
        return found
