"""The message processor: a batch of envelopes in; stored state, metrics, domain events and downlinks out.

It does what MyController's message processor does (create nodes/sources/fields on first sight, apply
values, answer requests, keep nodes up), with three properties the reference lacks:

* Idempotent and order-safe. A message id seen before is skipped. A value older (edge timestamp, then
  sequence) than the stored one is not applied, but still goes to metrics. Writes of field values are
  conditional (``put_many(if_newer=True)``) so concurrent batches cannot go back in time either. A value equal
  to the stored one (the same message, redelivered after a crash) is not written again but its event is
  announced again: events are at least once.
* Coalesced. Many values for one field in a batch cost one repository write and one ``updated`` event
  carrying the newest value; every value still goes to metrics. Node and source ``lastSeen`` alone is
  written at most once per ``last_seen_resolution_ms``.
* Per-message failures. A message that cannot be read or applied is reported with its reason; the rest of
  the batch completes.

Hot path: no pydantic on the way through (records are dicts), one ``get_many`` per kind per batch. Set messages
of a known sensor skip the interpreter (route cache); a field this processor stored last (the repository hands
back that very record) whose values in the batch are all newer is folded in one step (``_Batch._fast_field``)
and its values go to a metric store with ``write_series`` as one series. Anything else takes the general path;
``Processor(fast_path=False)`` takes it always, and tests hold both to the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite
from operator import attrgetter, itemgetter
from typing import Any, Final

from . import speedups
from .envelope import Downlink, Envelope
from .metrics import Series, SeriesWriter
from .model import (
    DomainEvent,
    EventType,
    FieldModel,
    Gateway,
    Kind,
    MetricType,
    Node,
    Record,
    Source,
    State,
    StateStatus,
    ValueError_,
    convert_value,
    event,
    ignored,
    iso_from_ms,
    ms_from_iso,
    now_ms,
)
from .ops import (
    FieldRequest,
    FieldValue,
    GatewayState,
    Interpreter,
    NodeIdRequest,
    NodeInfo,
    NodeSeen,
    NodeState,
    Op,
    Reply,
    SourceInfo,
)
from .ports import MetricPoint, MetricStore, Repository

ROUTE_CACHE_LIMIT = 100_000
Route = tuple[FieldValue, str, str, str]
"""What a route key always means: (the field value op, the field's id, its node's id, its source's id)."""
RECORD_CACHE_LIMIT = 20_000
"""Records the fast path remembers (by object identity). With the memory repository they are the stored records
themselves; with a repository that hands out fresh copies (DynamoDB) they never match and only cost memory, so
they are bounded lower."""
FIRST_NODE_ID = 1
LAST_NODE_ID = 254

_ISO_PREFIXES: dict[int, str] = {}
_ISO_MILLIS: Final = tuple(f".{millis:03d}Z" for millis in range(1000))
_CREATED: Final = EventType.CREATED.value
_UPDATED: Final = EventType.UPDATED.value
_BINARY_TEXT: Final = {"0": False, "1": True}
"""What MySensors binary sets carry; any other text takes ``convert_value``."""


def _iso(ms: int) -> str:
    """``iso_from_ms`` for the hot path: the per-second prefix and the millisecond suffix both looked up."""
    secs, millis = divmod(ms, 1000)
    prefix = _ISO_PREFIXES.get(secs)
    if prefix is None:
        if len(_ISO_PREFIXES) >= ROUTE_CACHE_LIMIT:
            _ISO_PREFIXES.clear()
        prefix = _ISO_PREFIXES[secs] = iso_from_ms(secs * 1000)[:-5]
    return prefix + _ISO_MILLIS[millis]


@dataclass(slots=True)
class MessageFailure:
    message_id: str
    gateway_id: str
    reason: str


@dataclass(slots=True)
class ProcessResult:
    events: list[DomainEvent] = field(default_factory=list)
    downlinks: list[Downlink] = field(default_factory=list)
    failures: list[MessageFailure] = field(default_factory=list)
    applied_ids: list[str] = field(default_factory=list)
    """Message ids processed without failure: mark them seen once their effects are out (``acknowledge``)."""
    duplicates: int = 0
    stale: int = 0
    repo_writes: int = 0
    metric_points: int = 0


_by_order = attrgetter("gateway_id", "timestamp", "sequence")
_message_id = attrgetter("message_id")
_gateway_id = attrgetter("gateway_id")
_record_id = itemgetter("id")
_first = itemgetter(0)


def _message_ids(native: Any, envelopes: Sequence[Envelope]) -> list[str]:
    """The envelopes' message ids, in order (read from the slots in C when it can)."""
    found = native.message_ids(envelopes) if native is not None else None
    return found if found is not None else list(map(_message_id, envelopes))


def _touched_id(pair: tuple[_EntityAcc, Record]) -> str:
    return str(pair[1]["id"])


class _FieldAcc:
    """What one batch does to one field, folded so that it becomes one write."""

    __slots__ = ("applied", "created", "meta", "ncs_ms", "p_seq", "p_ts", "p_value", "record", "replayed",
                 "seq", "stored_key", "ts", "value")

    def __init__(self, record: Record, created: bool) -> None:
        self.record = record
        self.created = created
        self.meta = created
        self.applied = 0
        self.replayed = False
        self.stored_key: tuple[int, int] | None = None
        self.ts = 0
        self.seq = 0
        self.value: Any = None
        self.p_ts = 0
        self.p_seq = 0
        self.p_value: Any = None
        self.ncs_ms: int | None = None

    def key(self) -> tuple[int, int]:
        if self.applied:
            return (self.ts, self.seq)
        if self.stored_key is None:
            current = self.record.get("current") or {}
            stamp = current.get("timestamp")
            self.stored_key = (ms_from_iso(stamp), int(current.get("sequence") or 0)) if stamp else (-1, -1)
        return self.stored_key

    def current_value(self) -> Any:
        return self.value if self.applied else (self.record.get("current") or {}).get("value")

    def materialize(self) -> Record:
        record = self.record
        if not self.applied:
            return record
        stamp = _iso(self.ts)
        current = {"value": self.value, "isReceived": True, "timestamp": stamp, "sequence": self.seq}
        if self.applied > 1:
            previous: Any = {"value": self.p_value, "isReceived": True, "timestamp": _iso(self.p_ts),
                             "sequence": self.p_seq}
        else:
            previous = record.get("current")
        new = {**record, "current": current, "previous": previous, "lastSeen": stamp}
        if self.ncs_ms is not None:
            new["noChangeSince"] = stamp if self.ncs_ms == self.ts else _iso(self.ncs_ms)
        return new


class _Folded:
    """A field the fast path (``_Batch._fast_field``) has folded: its new record is made already. Answers what
    ``_store`` and requests ask of a ``_FieldAcc``."""

    __slots__ = ("applied", "new", "seq", "ts")
    created = False
    replayed = False

    def __init__(self, new: Record, ts: int, seq: int, applied: int) -> None:
        self.new = new
        self.ts = ts
        self.seq = seq
        self.applied = applied

    @property
    def record(self) -> Record:
        return self.new

    def materialize(self) -> Record:
        return self.new


class _EntityAcc:
    """What one batch does to one node, source or gateway: content changes and last seen."""

    __slots__ = ("created", "dirty", "down_ms", "record", "seen_ms", "stored_seen_ms")

    def __init__(self, record: Record, created: bool) -> None:
        self.record = record
        self.created = created
        self.dirty = created
        self.seen_ms = 0
        self.down_ms = -1
        """When this batch marked the node down: traffic before that does not bring it back up."""
        self.stored_seen_ms: int | None = None

    def update(self, **changes: Any) -> None:
        self.record = {**self.record, **changes}
        self.dirty = True


class Processor:
    def __init__(
        self,
        repository: Repository,
        metrics: MetricStore,
        interpreters: Mapping[str, Interpreter] | None = None,
        *,
        last_seen_resolution_ms: int = 60_000,
        clock: Callable[[], int] = now_ms,
        fast_path: bool = True,
    ) -> None:
        if interpreters is None:
            from .providers import default_interpreters

            interpreters = default_interpreters()
        self.repository = repository
        self.metrics = metrics
        self.interpreters = dict(interpreters)
        self.last_seen_resolution_ms = last_seen_resolution_ms
        self.clock = clock
        self.fast_path = fast_path
        """Off: every value takes the general path (the reference the fast path is tested against)."""
        self.routers: dict[str, Callable[[str], tuple[str, str] | None]] = {
            name: router for name, interpreter in self.interpreters.items()
            if (router := getattr(interpreter, "route_key", None)) is not None
        }
        self.routes: dict[tuple[str, str], dict[str, Route]] = {}
        """(gateway, provider) → route key → the field value op it always yields, the field's id and its node's
        and source's ids (made once, not per batch)."""
        self.route_count = 0
        self.native_routes: dict[str, int] = {
            name: spec[1] for name, interpreter in self.interpreters.items()
            if (spec := getattr(interpreter, "native_route_key", None)) and spec[0] == "mysensors"
            and self.routers.get(name) is not None
        }
        """Providers whose routed messages C groups (``_speedups.route_known``): name → longest payload."""
        self.field_keys: dict[str, tuple[Record, int, int]] = {}
        """Field id → (the record this processor last stored, its value's timestamp and sequence). Valid only
        while the repository hands back that very object (records are never mutated): then its order key
        needs no parsing of the stored timestamp."""
        self.templates: dict[str, MetricPoint] = {}
        """Field id → the point naming it in metric series (its tags follow from the id)."""
        self.seen_ms: dict[str, tuple[str | None, int]] = {}
        """Entity id → (a gateway's, node's or source's last seen/transaction text, that time parsed): valid while
        its record holds that very str."""

    # ----------------------------------------------------------------------------------------- entry points

    def process(self, envelopes: Sequence[Envelope]) -> ProcessResult:
        """Apply a batch. Repository and metric store writes happen here; events and downlinks are returned
        for the caller to send, after which it calls ``acknowledge``."""
        result = ProcessResult()
        batch = self._fresh(envelopes, result)
        if not batch:
            return result
        _Batch(self, batch, result).run()
        return result

    def forget_route(self, field_key: str) -> None:
        """Drop cached routes to a field whose values could not be applied (let them be interpreted again)."""
        for table in self.routes.values():
            for route_key in [k for k, route in table.items() if route[1] == field_key]:
                del table[route_key]
                self.route_count -= 1

    def acknowledge(self, result: ProcessResult) -> None:
        """Remember the batch's messages as applied, once its events and downlinks are out."""
        if result.applied_ids:
            self.repository.mark_seen(result.applied_ids)

    @property
    def native(self) -> Any:
        """The C speed-ups, when built and this processor takes the fast path (the general path is the reference
        both are tested against); else None."""
        return speedups.native if self.fast_path else None

    def _fresh(self, envelopes: Sequence[Envelope], result: ProcessResult) -> list[Envelope]:
        native = self.native
        ids = _message_ids(native, envelopes)
        candidates = list(envelopes)  # (sorted below: the caller's list stays as it was)
        if native is None or native.consecutive_ids(ids) is None:  # (one stream's next seqs are all distinct)
            unique = dict(zip(ids, envelopes, strict=True))  # C speed; repeats counted below
            if len(unique) != len(envelopes):  # a message twice in the batch: the first one counts
                unique = {}
                for envelope in envelopes:
                    if envelope.message_id in unique:
                        result.duplicates += 1
                    else:
                        unique[envelope.message_id] = envelope
                ids = list(unique)
            candidates = list(unique.values())
        seen = self.repository.seen(ids) if ids else set()
        result.duplicates += len(seen)
        batch = [e for e in candidates if e.message_id not in seen] if seen else candidates
        if native is None or not native.in_order(batch):  # edges send them in order: the sort is often not needed
            batch.sort(key=_by_order)
        return batch


def _after_since(state: Record | None, ts: int) -> bool:
    """Traffic older than the moment a node was marked down (a late redelivery) does not bring it back up."""
    since = state.get("since") if state else None
    return not since or ts > ms_from_iso(since)


class _FieldGroup:
    """Every value one batch brings for one field, in order, with the op that says what the field is."""

    __slots__ = ("entries", "gateway_id", "key", "node_key", "source_key", "template")

    def __init__(self, gateway_id: str, key: str, template: FieldValue) -> None:
        self.gateway_id = gateway_id
        self.key = key
        self.template = template
        self.source_key = key.rpartition(".")[0]  # ids hold no dots: gw.node.source.field
        self.node_key = self.source_key.rpartition(".")[0]
        self.entries: list[tuple[int, int, Any, str]] = []
        """(edge timestamp, sequence, raw value, message id)"""


class _Batch:
    """One run of the processor over one batch (keeps the working state out of the long-lived Processor).

    Field values are grouped by field before they are applied: a field's node, source and record are looked
    up once per batch, and a tight loop folds its values. Set messages whose meaning apart from the value is
    fixed by a key (MySensors ``node;child;1;ack;type``) skip the interpreter after the first time.
    """

    def __init__(self, processor: Processor, envelopes: list[Envelope], result: ProcessResult) -> None:
        self.p = processor
        self.repo = processor.repository
        self.envelopes = envelopes
        self.result = result
        self.gateways: dict[str, _EntityAcc] = {}
        self.nodes: dict[str, _EntityAcc] = {}
        self.sources: dict[str, _EntityAcc] = {}
        self.fields: dict[str, _FieldAcc | _Folded] = {}
        self.groups: dict[str, _FieldGroup] = {}
        self.stored_nodes: dict[str, Record] = {}
        self.stored_sources: dict[str, Record] = {}
        self.stored_fields: dict[str, Record] = {}
        self.points: list[MetricPoint] = []
        self.series: list[Series] = []
        """Values of fields folded by ``_fold_newer``: a series per field, not a point per value."""
        self.requested: list[DomainEvent] = []
        self.pending_requests: list[tuple[str, FieldRequest, int, str]] = []
        self.node_ids_by_gateway: dict[str, set[str]] = {}
        self.batch_node_ids: dict[str, set[str]] = {}
        """Node ids each gateway's messages in this batch speak for (taken, for id requests)."""
        self.failed: set[str] = set()
        self.skipped_seen: dict[str, int] = {}
        """Node/source key → newest time the C fold saw it without making an accumulator (within the last-seen
        resolution of its stored time, so no write was due); an accumulator made later in the batch starts there."""

    # ----------------------------------------------------------------------------------------- run

    def run(self) -> None:
        result = self.result
        self._load_gateways()
        others = self._interpret()
        self._prefetch(others)
        for envelope, ops in others:
            try:
                error = self._apply(envelope, ops)
            except Exception as failure:  # bad data from a provider fails its message, not the batch
                error = f"{type(failure).__name__}: {failure}"
            if error is not None:
                self._fail(envelope.message_id, envelope.gateway_id, error)
        groups = list(self.groups.values())
        fold = self._native_fold()
        count = len(groups)
        i = 0
        while i < count:
            if fold is not None:  # plain groups at C speed; it stops at the first other one
                i = fold(groups, i)
                if i >= count:
                    break
            group = groups[i]
            i += 1
            try:
                self._apply_group(group)
            except Exception as failure:
                key = group.key
                self.fields.pop(key, None)
                self.p.forget_route(key)
                for _ts, _seq, _raw, message_id in group.entries:
                    self._fail(message_id, group.gateway_id, f"field {key}: {type(failure).__name__}: {failure}")
        for gw, request, ts, provider in self.pending_requests:
            try:
                self._field_request(gw, request, ts, provider)
            except Exception:  # answering a request must not cost the batch; the value itself was applied
                pass
        failed = self.failed
        result.applied_ids = ([e.message_id for e in self.envelopes if e.message_id not in failed] if failed
                              else _message_ids(self.p.native, self.envelopes))
        self._store()

    def _native_fold(self) -> Callable[[list[_FieldGroup], int], int] | None:
        """``_speedups.fold_groups`` bound to this batch: ``_apply_group`` of the fast path for plain groups (known
        field this processor wrote last, its node up and stored, no names to follow, newer values that convert)."""
        native = self.p.native
        if native is None:
            return None
        context = (self.nodes, self.sources, self.stored_nodes, self.stored_sources, self.stored_fields, self.fields,
                   self.gateways, self.p.field_keys, self.p.templates, self.series, MetricPoint, self.p.seen_ms,
                   self.skipped_seen)
        resolution = self.p.last_seen_resolution_ms

        def fold(groups: list[_FieldGroup], start: int) -> int:
            return int(native.fold_groups(groups, start, context, ROUTE_CACHE_LIMIT, resolution))

        return fold

    def _fail(self, message_id: str, gateway_id: str, reason: str) -> None:
        if message_id not in self.failed:
            self.failed.add(message_id)
            self.result.failures.append(MessageFailure(message_id, gateway_id, reason))

    def _load_gateways(self) -> None:
        native = self.p.native
        found = native.distinct_gateways(self.envelopes) if native is not None else None
        ids: set[str] = found if found is not None else set(map(_gateway_id, self.envelopes))
        stored = self.repo.get_many(Kind.GATEWAY, ids)
        if len(stored) == len(ids) and all((record.get("provider") or {}).get("type") not in (None, "", "unknown")
                                           for record in stored.values()):
            providers: dict[str, str] = {}  # every gateway known with its provider: nothing to take from envelopes
        else:
            providers = {e.gateway_id: e.provider for e in self.envelopes if e.provider != "edge"}
        unusable: dict[str, str] = {}
        for gateway_id in ids:
            record = stored.get(gateway_id)
            if record is not None:
                acc = _EntityAcc(record, created=False)
                provider = record.get("provider") or {}
                if gateway_id in providers and provider.get("type") in (None, "", "unknown"):
                    acc.update(provider={**provider, "type": providers[gateway_id]})  # first seen via edge state
                self.gateways[gateway_id] = acc
                continue
            try:
                record = Gateway(
                    id=gateway_id,
                    provider={"type": providers.get(gateway_id, "unknown")},
                    state=State(status=StateStatus.UP, message="first message", since=iso_from_ms(self.p.clock())),
                ).record()
            except ValueError as error:
                unusable[gateway_id] = f"gateway id {gateway_id!r} cannot be used: {error}"
                continue
            self.gateways[gateway_id] = _EntityAcc(record, created=True)
        if unusable:
            kept = []
            for envelope in self.envelopes:
                reason = unusable.get(envelope.gateway_id)
                if reason is None:
                    kept.append(envelope)
                else:
                    self._fail(envelope.message_id, envelope.gateway_id, reason)
            self.envelopes = kept

    def _group(self, gw: str, op: FieldValue, key: str | None = None) -> _FieldGroup:
        key = key or f"{gw}.{op.node_id}.{op.source_id}.{op.field_id}"
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _FieldGroup(gw, key, op)
        return group

    def _interpret(self) -> list[tuple[Envelope, list[Op]]]:
        interpreters = self.p.interpreters
        routers = self.p.routers
        tables = self.p.routes
        groups = self.groups
        others: list[tuple[Envelope, list[Op]]] = []
        last: tuple[str, str] | None = None
        router: Callable[[str], tuple[str, str] | None] | None = None
        table: dict[str, Route] = {}
        envelopes = self.envelopes
        native = self.p.native
        native_routes = self.p.native_routes
        route_known = native.route_known if native is not None and native_routes else None
        count = len(envelopes)
        i = 0
        while i < count:
            envelope = envelopes[i]
            if route_known is not None:
                max_payload = native_routes.get(envelope.provider)
                if max_payload is not None:  # known set messages from here on, at C speed; it stops at any other
                    i = route_known(envelopes, i, envelope.provider, tables, groups, _FieldGroup, max_payload)
                    if i >= count:
                        break
                    envelope = envelopes[i]
            i += 1
            provider = envelope.provider
            if last is None or envelope.gateway_id != last[0] or provider != last[1]:  # batches hold few streams
                last = (envelope.gateway_id, provider)
                router = routers.get(provider)
                table = tables.get(last) or {}
            route_key: str | None = None
            if router is not None:
                routed = router(envelope.raw)
                if routed is not None:
                    route_key = routed[0]
                    route = table.get(route_key)
                    if route is not None:
                        group = groups.get(route[1])
                        if group is None:
                            group = groups[route[1]] = _FieldGroup(envelope.gateway_id, route[1], route[0])
                        group.entries.append((envelope.timestamp, envelope.sequence, routed[1],
                                              envelope.message_id))
                        continue
            interpreter = interpreters.get(provider)
            if interpreter is None:
                self._fail(envelope.message_id, envelope.gateway_id, f"unknown provider {provider!r}")
                continue
            try:
                ops = interpreter.interpret(envelope, self.gateways[envelope.gateway_id].record)
            except ValueError as error:
                self._fail(envelope.message_id, envelope.gateway_id, str(error))
                continue
            except Exception as error:  # a provider bug must not cost the batch
                self._fail(envelope.message_id, envelope.gateway_id, f"{type(error).__name__}: {error}")
                continue
            rest: list[Op] = []
            for op in ops:
                if type(op) is FieldValue:
                    group = self._group(envelope.gateway_id, op)
                    group.entries.append((envelope.timestamp, envelope.sequence, op.value, envelope.message_id))
                    if route_key is not None and len(ops) == 1:
                        self._remember_route(envelope.gateway_id, provider, route_key, op, group)
                        last = None  # the stream's table may be new
                else:
                    rest.append(op)
            if rest:
                others.append((envelope, rest))
        return others

    def _remember_route(self, gw: str, provider: str, route_key: str, op: FieldValue, group: _FieldGroup) -> None:
        p = self.p
        if p.route_count >= ROUTE_CACHE_LIMIT:
            p.routes.clear()
            p.route_count = 0
        table = p.routes.setdefault((gw, provider), {})
        if route_key not in table:
            p.route_count += 1
        table[route_key] = (op, group.key, group.node_key, group.source_key)

    def _prefetch(self, others: list[tuple[Envelope, list[Op]]]) -> None:
        native = self.p.native
        keys = native.group_keys(self.groups) if native is not None else None
        node_ids: set[str]
        source_ids: set[str]
        field_ids: set[str]
        if keys is not None:
            node_ids, source_ids, field_ids = keys
        else:
            groups = self.groups.values()
            node_ids = {group.node_key for group in groups}
            source_ids = {group.source_key for group in groups}
            field_ids = set(self.groups)
        batch_node_ids = self.batch_node_ids  # (the groups' node ids join it when an id request needs it)
        for envelope, ops in others:
            gw = envelope.gateway_id
            for op in ops:
                kind = type(op)
                if kind is FieldRequest:
                    node = f"{gw}.{op.node_id}"  # type: ignore[union-attr]
                    source = f"{node}.{op.source_id}"  # type: ignore[union-attr]
                    node_ids.add(node)
                    source_ids.add(source)
                    field_ids.add(f"{source}.{op.field_id}")  # type: ignore[union-attr]
                elif kind is SourceInfo:
                    node = f"{gw}.{op.node_id}"  # type: ignore[union-attr]
                    node_ids.add(node)
                    source_ids.add(f"{node}.{op.source_id}")  # type: ignore[union-attr]
                elif kind is NodeInfo or kind is NodeSeen or kind is NodeState:
                    node_ids.add(f"{gw}.{op.node_id}")  # type: ignore[union-attr]
                if kind is not Reply and kind is not NodeIdRequest and kind is not GatewayState:
                    batch_node_ids.setdefault(gw, set()).add(op.node_id)  # type: ignore[union-attr]
        if node_ids:
            self.stored_nodes = self.repo.get_many(Kind.NODE, node_ids)
        if source_ids:
            self.stored_sources = self.repo.get_many(Kind.SOURCE, source_ids)
        if field_ids:
            self.stored_fields = self.repo.get_many(Kind.FIELD, field_ids)

    # ----------------------------------------------------------------------------------------- apply

    def _apply(self, envelope: Envelope, ops: list[Op]) -> str | None:
        gw = envelope.gateway_id
        ts = envelope.timestamp
        gateway = self.gateways[gw]
        if ts > gateway.seen_ms:
            gateway.seen_ms = ts
        error: str | None = None
        for op in ops:
            kind = type(op)
            if kind is NodeInfo:
                self._node_info(gw, op, ts)  # type: ignore[arg-type]
            elif kind is SourceInfo:
                self._source_info(gw, op, ts)  # type: ignore[arg-type]
            elif kind is NodeSeen:
                self._node(gw, op.node_id, ts)  # type: ignore[union-attr]
            elif kind is FieldRequest:
                self.pending_requests.append((gw, op, ts, envelope.provider))  # type: ignore[arg-type]
            elif kind is Reply:
                self.result.downlinks.append(op.downlink)  # type: ignore[union-attr]
            elif kind is NodeIdRequest:
                error = self._node_id_request(gw, envelope.provider) or error
            elif kind is NodeState:
                self._node_state(gw, op, ts)  # type: ignore[arg-type]
            elif kind is GatewayState:
                self._gateway_state(gateway, op, ts)  # type: ignore[arg-type]
        return error

    def _node(self, gw: str, node_id: str, ts: int, key: str = "") -> _EntityAcc:
        """The node's accumulator, created on first sight; marks it seen and up."""
        key = key or f"{gw}.{node_id}"
        acc = self.nodes.get(key)
        if acc is None:
            stored = self.stored_nodes.get(key)
            if stored is None:
                record = Node(gateway_id=gw, node_id=node_id, name=node_id).record()
                acc = _EntityAcc(record, created=True)
                self.node_ids_by_gateway.get(gw, set()).add(node_id)
            else:
                acc = _EntityAcc(stored, created=False)
                acc.seen_ms = self.skipped_seen.get(key, 0)
            self.nodes[key] = acc
        if ts > acc.seen_ms:
            acc.seen_ms = ts
        state = acc.record.get("state")
        if (not state or state.get("status") != "up") and ts > acc.down_ms and _after_since(state, ts):
            acc.update(state={"status": "up", "message": "", "since": iso_from_ms(ts)})
        return acc

    def _node_state(self, gw: str, op: NodeState, ts: int) -> None:
        acc = self._node(gw, op.node_id, ts)
        state = acc.record.get("state") or {}
        if state.get("status") != op.status or state.get("message") != op.message:
            acc.update(state={"status": op.status, "message": op.message, "since": iso_from_ms(ts)})
        if op.status != "up":
            acc.down_ms = ts

    def _source(self, gw: str, node_id: str, source_id: str, ts: int, key: str = "") -> _EntityAcc:
        key = key or f"{gw}.{node_id}.{source_id}"
        acc = self.sources.get(key)
        if acc is None:
            stored = self.stored_sources.get(key)
            if stored is None:
                record = Source(gateway_id=gw, node_id=node_id, source_id=source_id, name=source_id).record()
                acc = _EntityAcc(record, created=True)
            else:
                acc = _EntityAcc(stored, created=False)
                acc.seen_ms = self.skipped_seen.get(key, 0)
            self.sources[key] = acc
        if ts > acc.seen_ms:
            acc.seen_ms = ts
        return acc

    def _field(self, gw: str, key: str, op: FieldValue) -> _FieldAcc:
        found = self.fields.get(key)
        if isinstance(found, _FieldAcc):
            return found
        if found is None:  # (a field is folded by the fast path or here, once a batch: never both)
            stored = self.stored_fields.get(key)
            if stored is None:
                record = FieldModel(
                    gateway_id=gw, node_id=op.node_id, source_id=op.source_id, field_id=op.field_id,
                    name=op.name or op.field_id, metric_type=MetricType(op.metric_type), unit=op.unit,
                ).record()
                acc = _FieldAcc(record, created=True)
            else:
                acc = _FieldAcc(stored, created=False)
                known = self.p.field_keys.get(key) if self.p.fast_path else None
                if known is not None and known[0] is stored:
                    acc.stored_key = (known[1], known[2])
                self._field_metadata(acc, op)
            self.fields[key] = acc
            return acc
        raise RuntimeError(f"field {key} was folded by the fast path already")

    @staticmethod
    def _field_metadata(acc: _FieldAcc, op: FieldValue) -> None:
        """Name, metric type and unit follow the device unless the field says ``ignore_<key>``."""
        record = acc.record
        labels = record.get("labels")
        changes: dict[str, Any] = {}
        if op.metric_type and record.get("metricType") != op.metric_type and not ignored(labels, "metric_type"):
            changes["metricType"] = op.metric_type
        if op.unit and record.get("unit") != op.unit and not ignored(labels, "unit"):
            changes["unit"] = op.unit
        if op.name and record.get("name") != op.name and not ignored(labels, "name"):
            changes["name"] = op.name
        if changes:
            acc.record = {**record, **changes}
            acc.meta = True

    def _apply_group(self, group: _FieldGroup) -> None:
        """Fold every value of one field: metrics for all, the newest (if newer than stored) into the record."""
        gw = group.gateway_id
        op = group.template
        entries = group.entries
        last_ts = entries[-1][0]  # entries follow the batch order: edge timestamp, then sequence
        node = self._node(gw, op.node_id, last_ts, group.node_key)
        if op.node_name and node.record.get("name") != op.node_name and not ignored(node.record.get("labels"),
                                                                                     "name"):
            node.update(name=op.node_name)
        source = self._source(gw, op.node_id, op.source_id, last_ts, group.source_key)
        if op.source_name and source.record.get("name") != op.source_name and not ignored(
                source.record.get("labels"), "name"):
            source.update(name=op.source_name)
        gateway = self.gateways[gw]
        if last_ts > gateway.seen_ms:
            gateway.seen_ms = last_ts
        if self.p.fast_path and self._fast_field(group, op, gw):
            return
        acc = self._field(gw, group.key, op)
        record = acc.record
        metric_type = record["metricType"]
        field_id = record["id"]
        write_metric = metric_type != "none"
        points = self.points
        node_id, source_id, field_key = op.node_id, op.source_id, op.field_id
        cur_ts, cur_seq = acc.key()
        applied = acc.applied
        value_now = acc.current_value()
        ts_now, seq_now = acc.ts, acc.seq
        p_ts, p_seq, p_value = acc.p_ts, acc.p_seq, acc.p_value
        ncs = acc.ncs_ms
        created = acc.created
        if not applied and not created and self.p.fast_path and self._fold_newer(
                acc, entries, metric_type, cur_ts, cur_seq, value_now,
                (field_id, gw, node_id, source_id, field_key) if write_metric else None):
            return
        stale = 0
        numeric = metric_type == "gauge_float"
        for ts, seq, raw, message_id in entries:
            if numeric:  # the common case, inlined: float() and a finiteness check
                try:
                    value = float(raw)
                except (TypeError, ValueError, OverflowError):
                    value = None
                if value is None or value - value != 0:
                    self._fail(message_id, gw, f"field {field_id}: not a finite number for gauge_float: {raw!r}")
                    continue
            else:
                try:
                    value = convert_value(raw, metric_type)
                except ValueError_ as error:
                    self._fail(message_id, gw, f"field {field_id}: {error}")
                    continue
            if write_metric:
                points.append(MetricPoint(field_id, gw, node_id, source_id, field_key, metric_type, value, ts))
            if ts < cur_ts or (ts == cur_ts and seq < cur_seq):
                stale += 1
                continue
            if ts == cur_ts and seq == cur_seq:
                acc.replayed = True  # the very update already stored: announce again, write nothing
                continue
            if applied:
                p_ts, p_seq, p_value = ts_now, seq_now, value_now
            if value != value_now or (created and not applied):
                ncs = ts
            applied += 1
            ts_now, seq_now, value_now = ts, seq, value
            cur_ts, cur_seq = ts, seq
        self.result.stale += stale
        if applied:
            acc.applied = applied
            acc.ts, acc.seq, acc.value = ts_now, seq_now, value_now
            acc.p_ts, acc.p_seq, acc.p_value = p_ts, p_seq, p_value
            acc.ncs_ms = ncs

    def _fast_field(self, group: _FieldGroup, op: FieldValue, gw: str) -> bool:
        """The dominant case in one go: a stored field this processor wrote last (so its order key is known without
        parsing), metadata unchanged, every value newer than the stored one at distinct sequences and convertible
        without ``convert_value`` (gauge_float, or binary sent as 0/1). Makes the record ``_FieldAcc`` would
        make, or does nothing and returns False (then the general path does it all)."""
        key = group.key
        stored = self.stored_fields.get(key)
        if stored is None:
            return False
        known = self.p.field_keys.get(key)
        if known is None or known[0] is not stored or key in self.fields:
            return False
        metric_type = stored["metricType"]
        if ((op.metric_type and op.metric_type != metric_type) or (op.unit and op.unit != stored.get("unit"))
                or (op.name and op.name != stored.get("name"))):
            return False  # metadata to follow (or to keep, by an ignore_* label): the general path
        entries = group.entries
        first = entries[0]
        if first[0] < known[1] or (first[0] == known[1] and first[1] <= known[2]):
            return False
        n = len(entries)
        try:
            if metric_type == "gauge_float":
                if n == 1:  # most fields get one value a batch
                    number = float(first[2])
                    if number - number != 0:  # not finite
                        return False
                    values: list[Any] = [number]
                else:
                    values = [float(entry[2]) for entry in entries]
                    if not all(map(isfinite, values)):
                        return False
            elif metric_type == "binary":
                values = [_BINARY_TEXT[first[2]]] if n == 1 else [_BINARY_TEXT[entry[2]] for entry in entries]
            else:
                return False
        except (KeyError, TypeError, ValueError, OverflowError):
            return False
        if n > 1 and len({entry[1] for entry in entries}) != n:
            return False  # equal (timestamp, sequence) twice: the general path tells a replay from an update
        last = entries[-1]
        ts = last[0]
        stamp = _iso(ts)
        stored_current = stored["current"]
        current = {"value": values[-1], "isReceived": True, "timestamp": stamp, "sequence": last[1]}
        if n > 1:
            before = entries[-2]
            previous: Any = {"value": values[-2], "isReceived": True, "timestamp": _iso(before[0]),
                             "sequence": before[1]}
        else:
            previous = stored_current
        new = {**stored, "current": current, "previous": previous, "lastSeen": stamp}
        # no change since the last value that differs from the one before it (the stored value before the first)
        i = n - 1
        stored_value = stored_current.get("value") if stored_current else None
        while i >= 0:
            if values[i] != (values[i - 1] if i else stored_value):
                ncs = entries[i][0]
                new["noChangeSince"] = stamp if ncs == ts else _iso(ncs)
                break
            i -= 1
        self.fields[key] = _Folded(new, ts, last[1], n)
        templates = self.p.templates
        template = templates.get(key)
        if template is None or template[5] != metric_type:
            if len(templates) >= ROUTE_CACHE_LIMIT:
                templates.clear()
            template = templates[key] = MetricPoint(stored["id"], gw, op.node_id, op.source_id, op.field_id,
                                                    metric_type, None, 0)
        self.series.append((template, [ts] if n == 1 else [entry[0] for entry in entries], values))
        return True

    def _fold_newer(self, acc: _FieldAcc, entries: list[tuple[int, int, Any, str]], metric_type: str, cur_ts: int,
                    cur_seq: int, stored_value: Any, tags: tuple[str, str, str, str, str] | None) -> bool:
        """The common case folded without a loop per value: every value is newer than the stored one, at distinct
        sequences, and converts (gauge_float, or binary sent as 0/1). Does exactly what the loop in
        ``_apply_group`` would do, or nothing and returns False (then the loop does it)."""
        first = entries[0]
        if first[0] < cur_ts or (first[0] == cur_ts and first[1] <= cur_seq):
            return False
        n = len(entries)
        try:
            if metric_type == "gauge_float":
                values: list[Any] = [float(entry[2]) for entry in entries]
                if not all(map(isfinite, values)):
                    return False
            elif metric_type == "binary":
                values = [_BINARY_TEXT[entry[2]] for entry in entries]
            else:
                return False
        except (KeyError, TypeError, ValueError, OverflowError):
            return False
        if n > 1 and len({entry[1] for entry in entries}) != n:
            return False  # equal (timestamp, sequence) twice: the loop tells a replay from an update
        last = entries[-1]
        acc.applied = n
        acc.ts, acc.seq, acc.value = last[0], last[1], values[-1]
        if n > 1:
            before = entries[-2]
            acc.p_ts, acc.p_seq, acc.p_value = before[0], before[1], values[-2]
        # no change since the last value that differs from the one before it (the stored value before the first)
        i = n - 1
        while i >= 0:
            if values[i] != (values[i - 1] if i else stored_value):
                acc.ncs_ms = entries[i][0]
                break
            i -= 1
        if tags is not None:
            self.series.append((MetricPoint(*tags, metric_type, None, 0), [entry[0] for entry in entries], values))
        return True

    @staticmethod
    def _name_and_labels(acc: _EntityAcc, name: str | None, new_labels: dict[str, str]) -> None:
        """A device's name and labels for a node or source, except what the user pinned with ``ignore_*``."""
        record = acc.record
        labels = record.get("labels") or {}
        if name is not None and record.get("name") != name and not ignored(labels, "name"):
            acc.update(name=name)
        changed = {k: v for k, v in new_labels.items() if labels.get(k) != v and not ignored(labels, k)}
        if changed:
            acc.update(labels={**labels, **changed})

    def _node_info(self, gw: str, op: NodeInfo, ts: int) -> None:
        acc = self._node(gw, op.node_id, ts)
        self._name_and_labels(acc, op.name, op.labels)
        if op.others:
            others = acc.record.get("others") or {}
            new_others = {k: v for k, v in op.others.items() if others.get(k) != v}
            if new_others:
                acc.update(others={**others, **new_others})
        if op.metric is not None:
            key, metric_type, number = op.metric
            self.points.append(MetricPoint(f"{acc.record['id']}.{key}", gw, op.node_id, "", key, metric_type,
                                           number, ts))

    def _source_info(self, gw: str, op: SourceInfo, ts: int) -> None:
        self._node(gw, op.node_id, ts)
        self._name_and_labels(self._source(gw, op.node_id, op.source_id, ts), op.name, op.labels)

    def _field_request(self, gw: str, op: FieldRequest, ts: int, provider: str) -> None:
        self._node(gw, op.node_id, ts)
        self._source(gw, op.node_id, op.source_id, ts)
        key = f"{gw}.{op.node_id}.{op.source_id}.{op.field_id}"
        acc = self.fields.get(key)
        record = acc.materialize() if acc is not None else self.stored_fields.get(key)
        if record is None:
            self.requested.append(DomainEvent(EventType.REQUESTED.value, Kind.FIELD.value, key,
                                              f"field:{key}", None))
            return
        self.requested.append(event(EventType.REQUESTED, Kind.FIELD, record))
        if (record.get("current") or {}).get("value") is None:
            return
        interpreter = self.p.interpreters.get(provider)
        if interpreter is None:
            return
        reply = interpreter.reply_value(self.gateways[gw].record, record)
        if reply is not None:
            self.result.downlinks.append(reply)

    def _node_id_request(self, gw: str, provider: str) -> str | None:
        taken = self.node_ids_by_gateway.get(gw)
        if taken is None:
            taken = {r["nodeId"] for r in self.repo.children(Kind.GATEWAY, gw)}
            prefix = gw + "."
            taken.update(key[len(prefix):] for key in self.nodes if key.startswith(prefix))
            taken.update(key[len(prefix):] for key in self.stored_nodes if key.startswith(prefix))
            taken.update(self.batch_node_ids.get(gw, ()))
            taken.update(group.template.node_id for group in self.groups.values() if group.gateway_id == gw)
            self.node_ids_by_gateway[gw] = taken
        for candidate in range(FIRST_NODE_ID, LAST_NODE_ID + 1):
            if str(candidate) not in taken:
                break
        else:
            return f"no free node id in {FIRST_NODE_ID}-{LAST_NODE_ID} on gateway {gw}"
        interpreter = self.p.interpreters.get(provider)
        if interpreter is None:
            return f"provider {provider!r} cannot answer an id request"
        gateway = self.gateways[gw].record
        self.result.downlinks.append(interpreter.node_id_response(gateway, candidate))
        node_id = str(candidate)
        taken.add(node_id)
        record = Node(gateway_id=gw, node_id=node_id, name=node_id,
                      state=State(status=StateStatus.UNAVAILABLE, message="id assigned")).record()
        self.nodes[record["id"]] = _EntityAcc(record, created=True)
        return None

    @staticmethod
    def _gateway_state(gateway: _EntityAcc, op: GatewayState, ts: int) -> None:
        state = gateway.record.get("state") or {}
        if state.get("status") != op.status or state.get("message") != op.message:
            gateway.update(state={"status": op.status, "message": op.message, "since": iso_from_ms(ts)})

    # ----------------------------------------------------------------------------------------- store

    def _touch(self, acc: _EntityAcc, field_name: str) -> Record | None:
        """The record to write for a gateway/node/source, or None when nothing worth a write changed."""
        record = acc.record
        if acc.seen_ms:
            if acc.stored_seen_ms is None:
                acc.stored_seen_ms = self._stored_ms(record, field_name)
            advanced = acc.seen_ms - acc.stored_seen_ms
            if advanced > 0 and (acc.dirty or advanced >= self.p.last_seen_resolution_ms):
                return {**record, field_name: _iso(acc.seen_ms)}
        return record if acc.dirty else None

    def _stored_ms(self, record: Record, field_name: str) -> int:
        """A record's ``lastSeen``/``lastTransaction`` in ms, parsed once per text object: a record copied with
        other changes keeps that very str, so its time is known without parsing it again."""
        cache = self.p.seen_ms
        entity_id = record["id"]
        known = cache.get(entity_id)
        stored = record.get(field_name)
        if known is not None and known[0] is stored:
            return known[1]
        parsed = ms_from_iso(stored) if stored else 0
        if len(cache) >= RECORD_CACHE_LIMIT:
            cache.clear()
        cache[entity_id] = (stored, parsed)
        return parsed

    @staticmethod
    def _store_field(field_acc: _FieldAcc | _Folded, field_records: list[Record], field_events: list[DomainEvent],
                     applied: list[tuple[Record, int, int]]) -> None:
        """One field's record to write, its event and its order key (``_speedups.store_fields`` does this for
        folded fields)."""
        if field_acc.applied or field_acc.created:  # metadata alone (stale/replayed value) is not worth a write
            record = field_acc.materialize()
            field_records.append(record)
            if field_acc.applied:
                applied.append((record, field_acc.ts, field_acc.seq))
            field_id = record["id"]
            field_events.append(DomainEvent(_CREATED if field_acc.created else _UPDATED, "field", field_id,
                                            "field:" + field_id, record))
        elif field_acc.replayed:
            field_events.append(event(EventType.UPDATED, Kind.FIELD, field_acc.record))

    def _store(self) -> None:
        native = self.p.native
        result = self.result
        events = result.events
        repo = self.repo
        for kind, accs, seen_field in (
            (Kind.GATEWAY, self.gateways, "lastTransaction"),
            (Kind.NODE, self.nodes, "lastSeen"),
            (Kind.SOURCE, self.sources, "lastSeen"),
        ):
            touched = (native.touched(list(accs.values()), seen_field, self.p.last_seen_resolution_ms,
                                      self._stored_ms, _iso, self.p.seen_ms, RECORD_CACHE_LIMIT)
                       if native is not None else
                       [(acc, record) for acc in accs.values() if (record := self._touch(acc, seen_field)) is not None])
            if len(touched) > 1:  # by id: the order does not hang on which message of the batch touched one first
                touched.sort(key=_touched_id)
            records: list[Record] = []
            for acc, record in touched:
                records.append(record)
                events.append(event(EventType.CREATED if acc.created else EventType.UPDATED, kind, record))
            if records:
                repo.put_many(kind, records)
                result.repo_writes += len(records)
        field_records: list[Record]
        field_events: list[DomainEvent]
        applied: list[tuple[Record, int, int]]
        if native is not None:  # folded fields in C, the others through _store_field
            field_records, field_events, applied = native.store_fields(
                list(self.fields.values()), self._store_field, _CREATED, _UPDATED, Kind.FIELD.value)
        else:
            field_records, field_events, applied = [], [], []
            for field_acc in self.fields.values():
                self._store_field(field_acc, field_records, field_events, applied)
        if field_records:
            rejected = repo.put_many(Kind.FIELD, field_records, if_newer=True)
            result.repo_writes += len(field_records)
            known = self.p.field_keys
            if len(known) >= RECORD_CACHE_LIMIT:
                known.clear()
            known.update(zip(map(_record_id, map(_first, applied)), applied, strict=True))
            if rejected:
                lost = set(rejected)
                result.stale += len(lost)
                field_events = [e for e in field_events if e.entity_id not in lost]
                for entity_id in lost:
                    known.pop(entity_id, None)
        events.extend(field_events)
        events.extend(self.requested)
        metrics = self.p.metrics
        points, series = self.points, self.series
        store: SeriesWriter | None = metrics if series and hasattr(metrics, "write_series") else None  # type: ignore[assignment]
        if series and store is None:
            points.extend([template._replace(value=value, timestamp_ms=ts) for template, stamps, values in series
                           for ts, value in zip(stamps, values, strict=True)])
        if points:
            metrics.write(points)
        if store is not None:
            store.write_series(series)
        result.metric_points = len(points) + (sum(map(len, map(itemgetter(1), series))) if store else 0)


if speedups.native is not None:  # the classes C reads and makes, and their slots in the order it uses them
    _native = speedups.native
    _native.bind_slots(_native.FOLDED, _Folded, ("applied", "new", "seq", "ts"))
    _native.bind_slots(_native.ENTITY, _EntityAcc, ("record", "created", "dirty", "seen_ms", "down_ms",
                                                    "stored_seen_ms"))
    _native.bind_slots(_native.EVENT, DomainEvent, ("type", "entity_type", "entity_id", "entity_quick_id", "entity"))
    _native.bind_slots(_native.GROUP, _FieldGroup, ("entries", "gateway_id", "key", "node_key", "source_key",
                                                    "template"))
    _native.bind_slots(_native.OP, FieldValue, ("node_id", "source_id", "field_id", "value", "metric_type", "unit",
                                                "name", "source_name", "node_name"))
