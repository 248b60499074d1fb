"""Finding records by id or quick id, showing them without secrets, and announcing changes: what every use case
that reads or writes resources shares.

Quick ids (``field:gw.1.2.V_TEMP``) work wherever an id does. A lookup that finds nothing is ``NotFound`` naming the
input; ids longer than any valid one are not looked up at all, so a stray megabyte-long id never reaches a store
with key-size limits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from ..core.model import QUICK_ID_ALIASES, DomainEvent, EventType, Kind, QuickIdError, Record, event, parse_quick_id
from ..core.ports import EventBus, ListQuery, Repository, bus_event
from ..core.secrecy import check_query, public
from .errors import InvalidInput, NotFound, TooLarge

MAX_ID_CHARS: Final = 600
"""Longer than any valid id or quick id (four 128-character segments and a prefix)."""
MAX_RECORD_BYTES: Final = 200_000
"""Largest resource we store: DynamoDB items stop at 400 KB and EventBridge events (which carry the record) at
256 KB, so a bigger one is refused rather than failing half-way."""
_QUICK_PREFIXES: Final = frozenset({k.value for k in Kind} | set(QUICK_ID_ALIASES))


def looks_like_quick_id(text: str) -> bool:
    prefix, colon, _ = text.partition(":")
    return bool(colon) and prefix.strip().lower() in _QUICK_PREFIXES


def resolve_id(kind: Kind, text: str, field: str = "id") -> str:
    """A plain id, or the id a quick id of the same kind names (``node:gw.1`` → ``gw.1``)."""
    if not looks_like_quick_id(text):
        return text
    try:
        quick = parse_quick_id(text)
    except QuickIdError as error:
        raise InvalidInput(str(error), field) from None
    if quick.kind != kind:
        raise InvalidInput(f"{text!r} is a {quick.kind.value} quick id, not a {kind.value} one", field)
    return quick.id


def check_size(what: str, record: Record) -> None:
    """``TooLarge`` when the record, stored, would be more than ``MAX_RECORD_BYTES``."""
    size = len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_RECORD_BYTES:
        raise TooLarge(f"{what} would be {size} bytes stored, more than {MAX_RECORD_BYTES}", "body")


class Records:
    """Lookups and announcements over the repository and the bus."""

    def __init__(self, repository: Repository, bus: EventBus) -> None:
        self.repository = repository
        self.bus = bus

    def find(self, kind: Kind, text: str, field: str = "id") -> Record:
        """A record by id or quick id of its kind, or ``NotFound`` naming ``field``."""
        if len(text) > MAX_ID_CHARS:
            raise NotFound(f"{kind.value} id of {len(text)} characters not found", field)
        record = self.repository.get(kind, text)
        if record is None and looks_like_quick_id(text):
            record = self.repository.get(kind, resolve_id(kind, text, field))
        if record is None:
            raise NotFound(f"{kind.value} {text!r} not found", field)
        return record

    def find_all(self, kind: Kind, texts: Sequence[str], field: str = "body") -> dict[str, Record]:
        """The records of a list of ids or quick ids (in order, once each), or ``NotFound`` listing the unknown."""
        ids = list(dict.fromkeys(resolve_id(kind, text, f"[{i}]") for i, text in enumerate(texts)))
        too_long = [i for i in ids if len(i) > MAX_ID_CHARS]
        if too_long:
            raise NotFound(f"{kind.value} id of {len(too_long[0])} characters not found", field)
        found = self.repository.get_many(kind, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"{kind.value} not found: {', '.join(repr(m) for m in missing[:10])}", field)
        return {i: found[i] for i in ids}

    def page(self, kind: Kind, query: ListQuery) -> dict[str, Any]:
        """A page of the kind as it may be shown (no filter or sort on secret key paths)."""
        check_query(kind, query)
        page = self.repository.query(kind, query).to_dict()
        page["data"] = [public(kind, record) for record in page["data"]]
        return page

    def announce(self, events: Sequence[DomainEvent]) -> None:
        if events:
            self.bus.publish([bus_event(e) for e in events])

    def delete(self, kind: Kind, ids: Iterable[str]) -> list[tuple[Kind, Record]]:
        """Delete (with everything beneath) and announce ``deleted`` for each record, shown without secrets."""
        deleted = self.repository.delete(kind, list(ids))
        self.announce([event(EventType.DELETED, k, public(k, record)) for k, record in deleted])
        return deleted
