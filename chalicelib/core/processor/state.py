"""What one batch does to each entity, gathered before anything is written: a field's values (``FieldGroup``), then
its folded record (``FieldAcc`` on the general path, ``Folded`` on the fast path), and a gateway's, node's or
source's changes and last seen time (``EntityAcc``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mycontroller_protocol.envelope import Envelope

from ..model import Record, ms_from_iso
from ..ops import FieldValue
from .caches import iso


class FieldGroup:
    """Every value one batch brings for one field, in batch order, with the op that says what the field is.

    The messages and their raw values are two lists (not a tuple per message): the hot path appends to both,
    and the fast path reads timestamps and converts values a list at a time."""

    __slots__ = ("envelopes", "gateway_id", "key", "node_key", "source_key", "template", "values")

    def __init__(self, gateway_id: str, key: str, template: FieldValue, node_key: str = "",
                 source_key: str = "") -> None:
        self.gateway_id = gateway_id
        self.key = key
        self.template = template
        # ids hold no dots: gw.node.source.field (a route knows them already)
        self.source_key = source_key or key.rpartition(".")[0]
        self.node_key = node_key or self.source_key.rpartition(".")[0]
        self.envelopes: list[Envelope] = []
        self.values: list[Any] = []
        """The raw value each message brings (the payload text of a routed message)."""

    def entries(self) -> Iterator[tuple[int, int, Any, str]]:
        """(edge timestamp, sequence, raw value, message id) per message."""
        for envelope, raw in zip(self.envelopes, self.values, strict=True):
            yield envelope.timestamp, envelope.sequence, raw, envelope.message_id


class FieldAcc:
    """What one batch does to one field on the general path, folded so that it becomes one write."""

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
        """The order key (timestamp, sequence) a newer value must exceed."""
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
        stamp = iso(self.ts)
        current = {"value": self.value, "isReceived": True, "timestamp": stamp, "sequence": self.seq}
        if self.applied > 1:
            previous: Any = {"value": self.p_value, "isReceived": True, "timestamp": iso(self.p_ts),
                             "sequence": self.p_seq}
        else:
            previous = record.get("current")
        new = {**record, "current": current, "previous": previous, "lastSeen": stamp}
        if self.ncs_ms is not None:
            new["noChangeSince"] = stamp if self.ncs_ms == self.ts else iso(self.ncs_ms)
        return new


class Folded:
    """A field the fast path has folded: its new record is made already. Answers what storing and requests ask
    of a ``FieldAcc``."""

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


class EntityAcc:
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
