"""What a processor remembers from one batch to the next, so that the usual message costs a few dict lookups.

Four caches, each bounded and each only a shortcut (dropping any of them changes no result):

* routes: per (gateway, provider), what a provider's route key (MySensors ``node;child;1;ack;type``) always
  means: the field value op and the ids of the field, its node and its source. A known set message skips the
  interpreter.
* field keys: per field, the record this processor stored last and its value's timestamp and sequence. Valid
  while the repository hands back that very object (records are never mutated): then the stored value's order
  key needs no parsing.
* templates: per field, the metric point naming it in metric series (its tags follow from the id).
* last seen: per gateway, node or source, its ``lastSeen``/``lastTransaction`` text and that time parsed.
  Valid while its record holds that very str.

And two that hold what the processor did not write or read again:

* unwritten readings: per field, the newest reading that repeated the stored value and was not written
  (``unchanged_resolution_ms``), valid while the stored record is the one it repeated: a late redelivery older than
  it is stale, as it would have been had it been written.
* kept records (with ``keep_records_s``): per node and source, the record and the version a batch read it with, for
  that long. A batch takes them instead of reading them again; the batch that writes one writes it on that version
  (a conditional write: an edit of another writer meanwhile fails it, and the record is read again and the batch's
  changes made on it, ``core/conflicts.py``), and forgets it (its new version is read by the next batch that needs
  it). Between two ``lastSeen`` writes a node or source that reports every few seconds is read once, not every
  batch.

And one table shared by all processors: RFC 3339 texts per second (``iso``).
"""

from __future__ import annotations

from typing import Final

from ..model import Kind, Record, iso_from_ms, ms_from_iso
from ..ops import FieldValue
from ..ports import MetricPoint

ROUTE_CACHE_LIMIT: Final = 100_000
RECORD_CACHE_LIMIT: Final = 20_000
"""Records the fast path remembers (by object identity). With the memory repository they are the stored records
themselves; with a repository that hands out fresh copies (DynamoDB) they never match and only cost memory, so
they are bounded lower."""

Route = tuple[FieldValue, str, str, str]
"""What a route key always means: (the field value op, the field's id, its node's id, its source's id)."""
FieldKey = tuple[Record, int, int]
"""(the record a processor stored last, its value's timestamp and sequence)."""

_ISO_PREFIXES: dict[int, str] = {}
_ISO_MILLIS: Final = tuple(f".{millis:03d}Z" for millis in range(1000))


def iso(ms: int) -> str:
    """``iso_from_ms`` for the hot path: the per-second prefix and the millisecond suffix both looked up."""
    secs, millis = divmod(ms, 1000)
    prefix = _ISO_PREFIXES.get(secs)
    if prefix is None:
        if len(_ISO_PREFIXES) >= ROUTE_CACHE_LIMIT:
            _ISO_PREFIXES.clear()
        prefix = _ISO_PREFIXES[secs] = iso_from_ms(secs * 1000)[:-5]
    return prefix + _ISO_MILLIS[millis]


class Caches:
    """The four caches of one processor (see the module's docstring)."""

    __slots__ = ("field_keys", "kept", "route_count", "routes", "seen_ms", "templates", "unwritten")

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], dict[str, Route]] = {}
        """(gateway, provider) → route key → what it means."""
        self.route_count = 0
        self.field_keys: dict[str, FieldKey] = {}
        """Field id → the record this processor stored last, its value's timestamp and sequence."""
        self.templates: dict[str, MetricPoint] = {}
        """Field id → the point naming it in metric series."""
        self.seen_ms: dict[str, tuple[str | None, int]] = {}
        """Entity id → (its last seen/transaction text, that time parsed)."""
        self.unwritten: dict[str, tuple[str, int, int]] = {}
        """Field id → (the stored ``current.timestamp`` a repeated reading left as it was, that reading's timestamp
        and sequence): the newest reading of the field this processor knows of, valid while that is stored."""
        self.kept: dict[tuple[Kind, str], tuple[Record, int, float]] = {}
        """(kind, id) → (the record as read, the version it was read with, when it was read)."""

    # ----------------------------------------------------------------------------------------- routes

    def route_table(self, gateway_id: str, provider: str) -> dict[str, Route]:
        """The routes known for one stream; a new, unattached table when there are none yet."""
        return self.routes.get((gateway_id, provider)) or {}

    def remember_route(self, gateway_id: str, provider: str, route_key: str, route: Route) -> None:
        if self.route_count >= ROUTE_CACHE_LIMIT:
            self.routes.clear()
            self.route_count = 0
        table = self.routes.setdefault((gateway_id, provider), {})
        if route_key not in table:
            self.route_count += 1
        table[route_key] = route

    def forget_route(self, field_key: str) -> None:
        """Drop the routes to a field whose values could not be applied (they are interpreted again)."""
        for table in self.routes.values():
            for route_key in [k for k, route in table.items() if route[1] == field_key]:
                del table[route_key]
                self.route_count -= 1

    # ----------------------------------------------------------------------------------------- fields

    def remember_fields(self, applied: list[FieldKey]) -> None:
        """The field records just stored, with their values' order keys."""
        known = self.field_keys
        if len(known) >= RECORD_CACHE_LIMIT:
            known.clear()
        for entry in applied:
            known[entry[0]["id"]] = entry

    def forget_fields(self, field_ids: set[str]) -> None:
        """Fields whose write the repository refused: what it holds is not what this processor made."""
        for field_id in field_ids:
            self.field_keys.pop(field_id, None)

    def leave_unwritten(self, field_id: str, stored_stamp: str, ts: int, seq: int) -> None:
        """A repeated reading not written: the order key it would have stored (the record the processor stored last,
        if it did, is not what it knows any more)."""
        unwritten = self.unwritten
        if len(unwritten) >= RECORD_CACHE_LIMIT:
            unwritten.clear()
        unwritten[field_id] = (stored_stamp, ts, seq)
        self.field_keys.pop(field_id, None)

    def template(self, field_id: str, gateway_id: str, op: FieldValue, metric_type: str) -> MetricPoint:
        """The point naming a field in metric series, made once per field (and metric type)."""
        template = self.templates.get(field_id)
        if template is None or template[5] != metric_type:
            templates = self.templates
            if len(templates) >= ROUTE_CACHE_LIMIT:
                templates.clear()
            template = templates[field_id] = MetricPoint(field_id, gateway_id, op.node_id, op.source_id,
                                                         op.field_id, metric_type, None, 0)
        return template

    # ----------------------------------------------------------------------------------------- last seen

    def stored_ms(self, record: Record, field_name: str) -> int:
        """A record's ``lastSeen``/``lastTransaction`` in ms, parsed once per text object: a record copied with
        other changes keeps that very str, so its time is known without parsing it again."""
        cache = self.seen_ms
        entity_id = record["id"]
        known = cache.get(entity_id)
        stored = record.get(field_name)
        if known is not None and known[0] is stored:
            return known[1]
        parsed = ms_from_iso(stored) if stored else 0
        self.remember_seen(entity_id, stored, parsed)
        return parsed

    def remember_seen(self, entity_id: str, text: str | None, ms: int) -> None:
        """A last seen text and its time, known without parsing (made from the time, or parsed once)."""
        cache = self.seen_ms
        if len(cache) >= RECORD_CACHE_LIMIT:
            cache.clear()
        cache[entity_id] = (text, ms)

    # ----------------------------------------------------------------------------------------- kept records

    def kept_records(self, kind: Kind, ids: set[str], since: float) -> dict[str, tuple[Record, int]]:
        """The records of ``ids`` kept since ``since`` or later, with their versions."""
        kept = self.kept
        found: dict[str, tuple[Record, int]] = {}
        for entity_id in ids:
            entry = kept.get((kind, entity_id))
            if entry is not None:
                if entry[2] >= since:
                    found[entity_id] = (entry[0], entry[1])
                else:
                    del kept[(kind, entity_id)]
        return found

    def keep(self, kind: Kind, pairs: dict[str, tuple[Record, int]], now: float) -> None:
        """Records just read, with their versions."""
        kept = self.kept
        if len(kept) + len(pairs) > RECORD_CACHE_LIMIT:
            kept.clear()
        for entity_id, (record, version) in pairs.items():
            kept[(kind, entity_id)] = (record, version, now)

    def forget_kept(self, kind: Kind, ids: list[str]) -> None:
        """Records being written: their next version is read again."""
        kept = self.kept
        for entity_id in ids:
            kept.pop((kind, entity_id), None)
