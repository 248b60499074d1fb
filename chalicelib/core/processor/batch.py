"""One run of the processor over one batch: read the messages, apply them, store the outcome.

Field values are grouped by field before they are applied: a field's node, source and record are looked up once
per batch, and its values are folded in one step (``fold``) or, when they are not the usual ones, one at a time
(``Batch._apply_group``, the general path). Set messages whose meaning apart from the value is fixed by a key
(MySensors ``node;child;1;ack;type``) skip the interpreter after the first time (``caches``); a stream's known keys
are looked up once per batch, then each such message costs a split and a dict lookup. Everything else (node and
source facts, requests, states) is interpreted and applied message by message, before the field values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter, itemgetter
from typing import Any, Final

from mycontroller_protocol.envelope import Envelope
from mycontroller_protocol.values import convert_value

from ..conflicts import write_changes
from ..metrics import Series, SeriesWriter
from ..model import (
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
    event,
    ignored,
    iso_from_ms,
    ms_from_iso,
)
from ..ops import (
    FieldRequest,
    FieldValue,
    GatewayState,
    NodeIdRequest,
    NodeInfo,
    NodeSeen,
    NodeState,
    Op,
    Reply,
    SourceInfo,
)
from ..ports import MetricPoint, Repository
from .caches import Caches, FieldKey, Route, iso
from .fold import fold_known, fold_newer
from .parts import ProcessorParts
from .results import MessageFailure, ProcessResult, UnreadableRecord, permanent
from .state import EntityAcc, FieldAcc, FieldGroup, Folded

FIRST_NODE_ID: Final = 1
LAST_NODE_ID: Final = 254
_CREATED: Final = EventType.CREATED.value
_UPDATED: Final = EventType.UPDATED.value
_message_id = attrgetter("message_id")
_stamps = itemgetter(1)


def _touched_id(pair: tuple[EntityAcc, Record]) -> str:
    return str(pair[1]["id"])


def _after_since(state: Record | None, ts: int) -> bool:
    """Traffic older than the moment a node was marked down (a late redelivery) does not bring it back up."""
    since = state.get("since") if state else None
    return not since or ts > ms_from_iso(since)


_READ_ERRORS: Final = (ValueError, TypeError, AttributeError, KeyError, OverflowError, OSError)


def _stored_seen_ms(kind: Kind, record: Record, seen_field: str, caches: Caches) -> int:
    """A stored gateway's, node's or source's last seen time, once what the processor reads of it is checked (labels,
    state, the time itself): a record it cannot read fails the messages that touch it, not the batch."""
    labels = record.get("labels")
    state = record.get("state")
    problem = ("labels is not an object" if labels is not None and not isinstance(labels, dict)
               else "state is not an object" if state is not None and not isinstance(state, dict) else "")
    if not problem and state and state.get("status") != "up" and state.get("since"):  # read by _after_since
        try:
            ms_from_iso(state["since"])
        except _READ_ERRORS:
            problem = f"state.since {state['since']!r:.60} is not a date"
    if not problem:
        try:
            return caches.stored_ms(record, seen_field)
        except _READ_ERRORS:
            problem = f"{seen_field} {record.get(seen_field)!r:.60} is not a date"
    raise UnreadableRecord(f"stored {kind.value} {record.get('id')!r} cannot be read: {problem}")


def _read(repo: Repository, kind: Kind, ids: Iterable[str], versions: dict[Kind, dict[str, int]]) -> dict[str, Record]:
    """``get_many``, keeping the versions read in ``versions`` (no second read to write on them). Not necessarily
    consistent (half DynamoDB's price): every record the batch writes is written on the version read, so one read
    before a write of the last moment fails its write, is read again and the batch's changes are made on it
    (``core/conflicts.py``); a site's records are rewritten seconds apart, so this is rare."""
    return _records(kind, repo.get_many_versioned(kind, ids, consistent=False), versions)


def _records(kind: Kind, pairs: dict[str, tuple[Record, int]], versions: dict[Kind, dict[str, int]]
             ) -> dict[str, Record]:
    """The records of ``(record, version)`` pairs, their versions kept in ``versions``."""
    versions[kind] = {entity_id: version for entity_id, (_, version) in pairs.items()}
    return {entity_id: record for entity_id, (record, _) in pairs.items()}


class Batch:
    """The working state of one batch (kept out of the long-lived ``Processor``)."""

    def __init__(self, processor: ProcessorParts, envelopes: list[Envelope], gateway_ids: set[str],
                 result: ProcessResult) -> None:
        self.p = processor
        self.repo = processor.repository
        self.caches = processor.caches
        self.envelopes = envelopes
        self.gateway_ids = gateway_ids
        self.result = result
        self.gateways: dict[str, EntityAcc] = {}
        self.nodes: dict[str, EntityAcc] = {}
        self.sources: dict[str, EntityAcc] = {}
        self.fields: dict[str, FieldAcc | Folded] = {}
        self.groups: dict[str, FieldGroup] = {}
        self.stored_gateways: dict[str, Record] = {}
        self.versions: dict[Kind, dict[str, int]] = {}
        """The versions the stored records were read with: the batch writes on them (``core/conflicts.py``)."""
        self.stored_nodes: dict[str, Record] = {}
        self.stored_sources: dict[str, Record] = {}
        self.stored_fields: dict[str, Record] = {}
        self.points: list[MetricPoint] = []
        self.series: list[Series] = []
        """Values of folded fields: a series per field, not a point per value."""
        self.requested: list[DomainEvent] = []
        self.pending_requests: list[tuple[str, FieldRequest, int, str]] = []
        self.node_ids_by_gateway: dict[str, set[str]] = {}
        self.batch_node_ids: dict[str, set[str]] = {}
        """Node ids each gateway's messages in this batch speak for (taken, for id requests)."""
        self.failed: set[str] = set()

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
                self._fail(envelope.message_id, envelope.gateway_id, f"{type(failure).__name__}: {failure}",
                           permanent(failure))
                continue
            if error is not None:
                self._fail(envelope.message_id, envelope.gateway_id, error)
        for group in list(self.groups.values()):
            try:
                self._apply_group(group)
            except Exception as failure:
                key = group.key
                self.fields.pop(key, None)
                self.caches.forget_route(key)
                lasting = permanent(failure)
                for envelope in group.envelopes:
                    self._fail(envelope.message_id, group.gateway_id,
                               f"field {key}: {type(failure).__name__}: {failure}", lasting)
        for gw, request, ts, provider in self.pending_requests:
            try:
                self.answer_field_request(gw, request, ts, provider)
            except Exception:  # answering a request must not cost the batch; the value itself was applied
                pass
        failed = self.failed
        result.applied_ids = ([e.message_id for e in self.envelopes if e.message_id not in failed] if failed
                              else list(map(_message_id, self.envelopes)))
        self._store()

    def _fail(self, message_id: str, gateway_id: str, reason: str, lasting: bool = True) -> None:
        """A message not applied; ``lasting``: it would fail again however often it is retried."""
        if message_id not in self.failed:
            self.failed.add(message_id)
            self.result.failures.append(MessageFailure(message_id, gateway_id, reason, lasting))

    def _load_gateways(self) -> None:
        ids = self.gateway_ids
        stored = self.stored_gateways = _read(self.repo, Kind.GATEWAY, ids, self.versions)
        if len(stored) == len(ids) and all(isinstance(provider := record.get("provider"), dict)
                                           and provider.get("type") not in (None, "", "unknown")
                                           for record in stored.values()):
            providers: dict[str, str] = {}  # every gateway known with its provider: nothing to take from envelopes
        else:
            providers = {e.gateway_id: e.provider for e in self.envelopes if e.provider != "edge"}
        unusable: dict[str, str] = {}
        for gateway_id in ids:
            record = stored.get(gateway_id)
            if record is not None:
                try:
                    seen_ms = _stored_seen_ms(Kind.GATEWAY, record, "lastTransaction", self.caches)
                    provider = record.get("provider") or {}
                    if not isinstance(provider, dict):
                        raise UnreadableRecord(f"stored gateway {gateway_id!r} cannot be read: provider is not an "
                                               "object")
                except UnreadableRecord as error:
                    unusable[gateway_id] = str(error)
                    continue
                acc = EntityAcc(record, created=False)
                acc.stored_seen_ms = seen_ms
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
            self.gateways[gateway_id] = EntityAcc(record, created=True)
        if unusable:
            kept = []
            for envelope in self.envelopes:
                reason = unusable.get(envelope.gateway_id)
                if reason is None:
                    kept.append(envelope)
                else:
                    self._fail(envelope.message_id, envelope.gateway_id, reason)
            self.envelopes = kept

    # ----------------------------------------------------------------------------------------- read

    # One function on purpose: this is the per-message ingest loop, inlined for speed (a call per message costs
    # throughput, see bench/ingest.py).
    def _interpret(self) -> list[tuple[Envelope, list[Op]]]:  # noqa: C901, PLR0915
        """Field values into their fields' groups; every other op returned with its message, in batch order.

        A provider that declares ``route_key_tail`` (the separator its route keys end at, and the longest value
        after it) has its known keys looked up straight from the split message, without ``route_key``: a key in
        the route table is one, and the value only needs the checks ``route_key`` makes of it."""
        p = self.p
        interpreters = p.interpreters
        caches = self.caches
        groups = self.groups
        others: list[tuple[Envelope, list[Op]]] = []
        stream_heads: dict[tuple[str, str], dict[str, FieldGroup]] = {}
        gw = provider = ""
        router: Callable[[str], tuple[str, str] | None] | None = None
        table: dict[str, Route] = {}
        heads: dict[str, FieldGroup] = {}
        separator = ""
        max_value = 0
        for envelope in self.envelopes:
            if envelope.gateway_id != gw or envelope.provider != provider:  # batches hold few streams
                gw, provider = envelope.gateway_id, envelope.provider
                router = p.routers.get(provider)
                table = caches.route_table(gw, provider)
                separator, max_value = p.route_key_tails.get(provider, ("", 0))
                heads = stream_heads.setdefault((gw, provider), {})
            if separator:  # a known key (the table holds route keys only), if the value is what route_key takes
                head, _sep, value = envelope.raw.rpartition(separator)
                if len(value) <= max_value and value.isprintable():
                    group = heads.get(head)
                    if group is None and (route := table.get(head)) is not None:
                        group = groups.get(route[1])
                        if group is None:
                            group = groups[route[1]] = FieldGroup(gw, route[1], route[0], route[2], route[3])
                        heads[head] = group
                    if group is not None:
                        group.envelopes.append(envelope)
                        group.values.append(value)
                        continue
            route_key: str | None = None
            if router is not None:
                routed = router(envelope.raw)
                if routed is not None:
                    route_key = routed[0]
                    route = table.get(route_key)
                    if route is not None:
                        group = groups.get(route[1])
                        if group is None:
                            group = groups[route[1]] = FieldGroup(gw, route[1], route[0], route[2], route[3])
                        group.envelopes.append(envelope)
                        group.values.append(routed[1])
                        continue
            interpreter = interpreters.get(provider)
            if interpreter is None:
                self._fail(envelope.message_id, gw, f"unknown provider {provider!r}")
                continue
            try:
                ops = interpreter.interpret(envelope, self.gateways[gw].record)
            except ValueError as error:
                self._fail(envelope.message_id, gw, str(error))
                continue
            except Exception as error:  # a provider bug must not cost the batch
                self._fail(envelope.message_id, gw, f"{type(error).__name__}: {error}", permanent(error))
                continue
            rest: list[Op] = []
            for op in ops:
                if type(op) is FieldValue:
                    group = self._group(gw, op)
                    group.envelopes.append(envelope)
                    group.values.append(op.value)
                    if route_key is not None and len(ops) == 1:
                        caches.remember_route(gw, provider, route_key,
                                              (op, group.key, group.node_key, group.source_key))
                        table = caches.route_table(gw, provider)  # (the stream's table may be new)
                else:
                    rest.append(op)
            if rest:
                others.append((envelope, rest))
        return others

    def _group(self, gw: str, op: FieldValue) -> FieldGroup:
        key = f"{gw}.{op.node_id}.{op.source_id}.{op.field_id}"
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = FieldGroup(gw, key, op)
        return group

    def _prefetch(self, others: list[tuple[Envelope, list[Op]]]) -> None:
        """One ``get_many`` per kind for every node, source and field the batch speaks of."""
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
            self.stored_nodes = self._read_kept(Kind.NODE, node_ids)
        if source_ids:
            self.stored_sources = self._read_kept(Kind.SOURCE, source_ids)
        if field_ids:
            self.stored_fields = _read(self.repo, Kind.FIELD, field_ids, self.versions)

    def _read_kept(self, kind: Kind, ids: set[str]) -> dict[str, Record]:
        """``_read``, except for the records a batch of this processor read within ``keep_records_s`` and nobody
        wrote since (``caches``): taken with the version they were read with, which their write is conditional on."""
        keep_s = self.p.keep_records_s
        if keep_s <= 0:
            return _read(self.repo, kind, ids, self.versions)
        now = self.p.monotonic()
        pairs = self.caches.kept_records(kind, ids, now - keep_s)
        missing = ids.difference(pairs) if pairs else ids
        if missing:
            read = self.repo.get_many_versioned(kind, missing, consistent=False)
            self.caches.keep(kind, read, now)
            pairs.update(read)
        return _records(kind, pairs, self.versions)

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
                self.node(gw, op.node_id, ts)  # type: ignore[union-attr]
            elif kind is FieldRequest:
                self.pending_requests.append((gw, op, ts, envelope.provider))  # type: ignore[arg-type]
            elif kind is Reply:
                self.result.downlinks.append(op.downlink)  # type: ignore[union-attr]
            elif kind is NodeIdRequest:
                error = self.assign_node_id(gw, envelope.provider) or error
            elif kind is NodeState:
                self._node_state(gw, op, ts)  # type: ignore[arg-type]
            elif kind is GatewayState:
                self._gateway_state(gateway, op, ts)  # type: ignore[arg-type]
        return error

    # ----------------------------------------------------------------------------------------- requests

    def answer_field_request(self, gw: str, op: FieldRequest, ts: int, provider: str) -> None:
        """A ``requested`` event for the field, and a reply with its value when it has one and the provider can send
        it. Runs after the batch's values are folded, so the answer is the newest value."""
        self.node(gw, op.node_id, ts)
        self.source(gw, op.node_id, op.source_id, ts)
        key = f"{gw}.{op.node_id}.{op.source_id}.{op.field_id}"
        acc = self.fields.get(key)
        record = acc.materialize() if acc is not None else self.stored_fields.get(key)
        if record is None:
            self.requested.append(DomainEvent(EventType.REQUESTED.value, Kind.FIELD.value, key, f"field:{key}", None))
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


    def assign_node_id(self, gw: str, provider: str) -> str | None:
        """Answer an id request with the first id no node of the gateway has (stored, made in this batch, or spoken
        for by the batch's messages) and create that node; the reason when there is none to give."""
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
        self.nodes[record["id"]] = EntityAcc(record, created=True)
        return None

    def node(self, gw: str, node_id: str, ts: int, key: str = "") -> EntityAcc:
        """The node's accumulator, created on first sight; marks it seen and up."""
        key = key or f"{gw}.{node_id}"
        acc = self.nodes.get(key)
        if acc is None:
            stored = self.stored_nodes.get(key)
            if stored is None:
                record = Node(gateway_id=gw, node_id=node_id, name=node_id).record()
                acc = EntityAcc(record, created=True)
                self.node_ids_by_gateway.get(gw, set()).add(node_id)
            else:
                acc = EntityAcc(stored, created=False)
                acc.stored_seen_ms = _stored_seen_ms(Kind.NODE, stored, "lastSeen", self.caches)
            self.nodes[key] = acc
        if ts > acc.seen_ms:
            acc.seen_ms = ts
        state = acc.record.get("state")
        if (not state or state.get("status") != "up") and ts > acc.down_ms and _after_since(state, ts):
            acc.update(state={"status": "up", "message": "", "since": iso_from_ms(ts)})
        return acc

    def _node_state(self, gw: str, op: NodeState, ts: int) -> None:
        acc = self.node(gw, op.node_id, ts)
        state = acc.record.get("state") or {}
        if state.get("status") != op.status or state.get("message") != op.message:
            acc.update(state={"status": op.status, "message": op.message, "since": iso_from_ms(ts)})
        if op.status != "up":
            acc.down_ms = ts

    def source(self, gw: str, node_id: str, source_id: str, ts: int, key: str = "") -> EntityAcc:
        """The source's accumulator, created on first sight; marks it seen."""
        key = key or f"{gw}.{node_id}.{source_id}"
        acc = self.sources.get(key)
        if acc is None:
            stored = self.stored_sources.get(key)
            if stored is None:
                record = Source(gateway_id=gw, node_id=node_id, source_id=source_id, name=source_id).record()
                acc = EntityAcc(record, created=True)
            else:
                acc = EntityAcc(stored, created=False)
                acc.stored_seen_ms = _stored_seen_ms(Kind.SOURCE, stored, "lastSeen", self.caches)
            self.sources[key] = acc
        if ts > acc.seen_ms:
            acc.seen_ms = ts
        return acc

    @staticmethod
    def _name_and_labels(acc: EntityAcc, name: str | None, new_labels: Mapping[str, str | None]) -> None:
        """A device's name and labels for a node or source, except what the user pinned with ``ignore_*``."""
        record = acc.record
        labels = record.get("labels") or {}
        if name is not None and record.get("name") != name and not ignored(labels, "name"):
            acc.update(name=name)
        changed = {k: v for k, v in new_labels.items() if labels.get(k) != v and not ignored(labels, k)}
        if changed:  # a label given as None is removed
            acc.update(labels={k: v for k, v in {**labels, **changed}.items() if v is not None})

    def _node_info(self, gw: str, op: NodeInfo, ts: int) -> None:
        acc = self.node(gw, op.node_id, ts)
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
        self.node(gw, op.node_id, ts)
        self._name_and_labels(self.source(gw, op.node_id, op.source_id, ts), op.name, op.labels)

    @staticmethod
    def _gateway_state(gateway: EntityAcc, op: GatewayState, ts: int) -> None:
        state = gateway.record.get("state") or {}
        if state.get("status") != op.status or state.get("message") != op.message:
            gateway.update(state={"status": op.status, "message": op.message, "since": iso_from_ms(ts)})

    # ----------------------------------------------------------------------------------------- field values

    def _apply_group(self, group: FieldGroup) -> None:
        """Fold every value of one field: metrics for all, the newest (if newer than stored) into the record."""
        gw = group.gateway_id
        op = group.template
        envelopes = group.envelopes
        last_ts = envelopes[-1].timestamp  # values follow the batch order: edge timestamp, then sequence
        node = self.node(gw, op.node_id, last_ts, group.node_key)
        if op.node_name and node.record.get("name") != op.node_name and not ignored(node.record.get("labels"),
                                                                                     "name"):
            node.update(name=op.node_name)
        source = self.source(gw, op.node_id, op.source_id, last_ts, group.source_key)
        if op.source_name and source.record.get("name") != op.source_name and not ignored(
                source.record.get("labels"), "name"):
            source.update(name=op.source_name)
        gateway = self.gateways[gw]
        if last_ts > gateway.seen_ms:
            gateway.seen_ms = last_ts
        fast = self.p.fast_path
        key = group.key
        if fast and key not in self.fields:  # a field this processor wrote last: folded in one step
            stored = self.stored_fields.get(key)
            known = self.caches.field_keys.get(key) if stored is not None else None
            if known is not None and known[0] is stored:
                folded = fold_known(group, stored, known[1], known[2])
                if folded is not None:
                    self.fields[key] = folded[0]
                    self.series.append((self.caches.template(key, gw, op, stored["metricType"]), folded[1], folded[2]))
                    return
        acc = self._field(gw, key, op)
        record = acc.record
        metric_type = record["metricType"]
        field_id = record["id"]
        cur_ts, cur_seq = acc.key()
        applied = acc.applied
        value_now = acc.current_value()
        created = acc.created
        if fast and not applied and not created:
            newer = fold_newer(acc, group, metric_type, cur_ts, cur_seq, value_now)
            if newer is not None:
                if metric_type != "none":
                    self.series.append((self.caches.template(field_id, gw, op, metric_type), *newer))
                return
        self._apply_values(acc, group, field_id, metric_type, cur_ts, cur_seq, value_now)

    def _apply_values(self, acc: FieldAcc, group: FieldGroup, field_id: str, metric_type: str, cur_ts: int,
                      cur_seq: int, value_now: Any) -> None:
        """The general path, a value at a time: convert (or fail the message), a metric point, then newer than
        the stored value (applied), older (stale) or the very same (a replay: announced again, not written)."""
        gw = group.gateway_id
        op = group.template
        write_metric = metric_type != "none"
        points = self.points
        node_id, source_id, field_key = op.node_id, op.source_id, op.field_id
        applied = acc.applied
        created = acc.created
        ts_now, seq_now = acc.ts, acc.seq
        p_ts, p_seq, p_value = acc.p_ts, acc.p_seq, acc.p_value
        ncs = acc.ncs_ms
        stale = 0
        numeric = metric_type == "gauge_float"
        for envelope, raw in zip(group.envelopes, group.values, strict=True):
            ts = envelope.timestamp
            seq = envelope.sequence
            if numeric:  # the common case, inlined: float() and a finiteness check
                try:
                    value = float(raw)
                except (TypeError, ValueError, OverflowError):
                    value = None
                if value is None or value - value != 0:
                    self._fail(envelope.message_id, gw,
                               f"field {field_id}: not a finite number for gauge_float: {raw!r}")
                    continue
            else:
                try:
                    value = convert_value(raw, metric_type)
                except ValueError_ as error:
                    self._fail(envelope.message_id, gw, f"field {field_id}: {error}")
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

    def _field(self, gw: str, key: str, op: FieldValue) -> FieldAcc:
        found = self.fields.get(key)
        if isinstance(found, FieldAcc):
            return found
        if found is None:  # (a field is folded by the fast path or here, once a batch: never both)
            stored = self.stored_fields.get(key)
            if stored is None:
                record = FieldModel(
                    gateway_id=gw, node_id=op.node_id, source_id=op.source_id, field_id=op.field_id,
                    name=op.name or op.field_id, metric_type=MetricType(op.metric_type), unit=op.unit,
                ).record()
                acc = FieldAcc(record, created=True)
            else:
                acc = FieldAcc(stored, created=False)
                known = self.caches.field_keys.get(key) if self.p.fast_path else None
                if known is not None and known[0] is stored:
                    acc.stored_key = (known[1], known[2])
                else:
                    try:  # the stored value's order key, read now so that an unreadable one is named
                        acc.key()
                    except _READ_ERRORS as error:
                        raise UnreadableRecord(f"stored field {key!r} cannot be read: current "
                                               f"{stored.get('current')!r:.80}: {error}") from None
                if not isinstance(stored.get("labels") or {}, dict):
                    raise UnreadableRecord(f"stored field {key!r} cannot be read: labels is not an object")
                if self.caches.unwritten:
                    self._unwritten_key(acc, key, stored)
                self._field_metadata(acc, op)
            self.fields[key] = acc
            return acc
        raise RuntimeError(f"field {key} was folded by the fast path already")

    def _unwritten_key(self, acc: FieldAcc, key: str, stored: Record) -> None:
        """The order key of a repeated reading this processor announced and did not write (``_unchanged``), while
        the stored record is still the one it repeated: a late redelivery older than it is stale, as it would be had
        it been written, and that very reading again is a replay."""
        entry = self.caches.unwritten.get(key)
        if entry is None:
            return
        if entry[0] != (stored.get("current") or {}).get("timestamp"):  # written since: the stored key holds
            del self.caches.unwritten[key]
        elif (entry[1], entry[2]) > acc.key():
            acc.stored_key = (entry[1], entry[2])

    def _unchanged(self, field_acc: FieldAcc | Folded, new: Record, events: list[DomainEvent]) -> bool:
        """A field whose batch only repeats its stored value, sooner than ``unchanged_resolution_ms`` after the stored
        reading: announced (an update with the reading's own time), its values in the metric store already, but not
        written; its stored ``current`` time and ``lastSeen`` stay as they are, at most that old."""
        if not field_acc.applied or field_acc.created or getattr(field_acc, "meta", False):
            return False
        field_id = new["id"]
        stored = self.stored_fields.get(field_id)
        current = (stored or {}).get("current")
        if stored is None or not isinstance(current, dict):
            return False
        value, repeated = current.get("value"), new["current"]["value"]
        if type(value) is not type(repeated) or value != repeated or new.get("noChangeSince") != stored.get(
                "noChangeSince"):
            return False  # (a batch that went away and back changes noChangeSince: written)
        stamp = current.get("timestamp")
        if not isinstance(stamp, str):
            return False
        try:
            stored_ms = ms_from_iso(stamp)
        except _READ_ERRORS:
            return False
        if field_acc.ts - stored_ms >= self.p.unchanged_resolution_ms:
            return False
        self.caches.leave_unwritten(field_id, stamp, field_acc.ts, field_acc.seq)
        events.append(DomainEvent(_UPDATED, "field", field_id, "field:" + field_id, new))
        return True

    @staticmethod
    def _field_metadata(acc: FieldAcc, op: FieldValue) -> None:
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

    # ----------------------------------------------------------------------------------------- store

    def _touch(self, acc: EntityAcc, field_name: str) -> Record | None:
        """The record to write for a gateway/node/source, or None when nothing worth a write changed."""
        record = acc.record
        if acc.seen_ms:
            if acc.stored_seen_ms is None:
                acc.stored_seen_ms = self.caches.stored_ms(record, field_name)
            advanced = acc.seen_ms - acc.stored_seen_ms
            if advanced > 0 and (acc.dirty or advanced >= self.p.last_seen_resolution_ms):
                stamp = iso(acc.seen_ms)
                self.caches.remember_seen(record["id"], stamp, acc.seen_ms)  # the next batch reads it unparsed
                return {**record, field_name: stamp}
        return record if acc.dirty else None

    @staticmethod
    def _store_field(field_acc: FieldAcc | Folded, record: Record | None, field_records: list[Record],
                     field_events: list[DomainEvent], applied: list[FieldKey]) -> None:
        """One field's record to write (``record``: its new record, when it has one), its event and its order key."""
        if record is not None:
            field_records.append(record)
            if field_acc.applied:
                applied.append((record, field_acc.ts, field_acc.seq))
            field_id = record["id"]
            field_events.append(DomainEvent(_CREATED if field_acc.created else _UPDATED, "field", field_id,
                                            "field:" + field_id, record))
        elif field_acc.replayed:
            field_events.append(event(EventType.UPDATED, Kind.FIELD, field_acc.record))

    def _store_records(self, events: list[DomainEvent]) -> None:
        """Each record written on the version this batch read it with (``core/conflicts.py``): one an API edit, the
        edge's report or another batch changed meanwhile gets this batch's changes made again on top, so that
        neither is lost (the events then carry what was written)."""
        result = self.result
        repo = self.repo
        for kind, accs, seen_field, bases in (
            (Kind.GATEWAY, self.gateways, "lastTransaction", self.stored_gateways),
            (Kind.NODE, self.nodes, "lastSeen", self.stored_nodes),
            (Kind.SOURCE, self.sources, "lastSeen", self.stored_sources),
        ):
            touched = [(acc, record) for acc in accs.values() if (record := self._touch(acc, seen_field)) is not None]
            if len(touched) > 1:  # by id: the order does not hang on which message of the batch touched one first
                touched.sort(key=_touched_id)
            if touched:
                if kind is not Kind.GATEWAY:  # their next version is read again (``caches``)
                    self.caches.forget_kept(kind, [record["id"] for _, record in touched])
                written = write_changes(repo, kind, [(None if acc.created else bases.get(record["id"]), record)
                                                     for acc, record in touched], versions=self.versions.get(kind, {}))
                for acc, record in touched:
                    events.append(event(EventType.CREATED if acc.created else EventType.UPDATED, kind,
                                        written.records.get(record["id"], record)))
                result.repo_writes += len(touched)
        field_records: list[Record] = []
        field_events: list[DomainEvent] = []
        applied: list[FieldKey] = []
        unchanged_ms = self.p.unchanged_resolution_ms
        for field_acc in self.fields.values():
            # its new record, made once (metadata alone, a stale or replayed value, is not worth a write)
            new = field_acc.materialize() if field_acc.applied or field_acc.created else None
            if unchanged_ms and new is not None and self._unchanged(field_acc, new, field_events):
                continue
            self._store_field(field_acc, new, field_records, field_events, applied)
        if field_records:
            stored = self.stored_fields
            outcome = write_changes(repo, Kind.FIELD, [(stored.get(r["id"]), r) for r in field_records],
                                    if_newer=True, versions=self.versions.get(Kind.FIELD, {}))
            rejected = outcome.stale
            result.repo_writes += len(field_records)
            self.caches.remember_fields(applied)
            if outcome.rebased:
                self.caches.forget_fields(outcome.rebased)
                field_events = [DomainEvent(e.type, e.entity_type, e.entity_id, e.entity_quick_id,
                                            outcome.records[e.entity_id]) if e.entity_id in outcome.rebased
                                and e.entity_id in outcome.records else e for e in field_events]
            if rejected:
                lost = set(rejected)
                result.stale += len(lost)
                field_events = [e for e in field_events if e.entity_id not in lost]
                self.caches.forget_fields(lost)
        events.extend(field_events)

    def _store(self) -> None:
        result = self.result
        events = result.events
        repo = self.repo
        with repo.transaction():  # the batch's records: one transaction where the store has them (SQLite)
            self._store_records(events)
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
        result.metric_points = len(points) + (sum(map(len, map(_stamps, series))) if store else 0)
