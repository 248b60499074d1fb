"""The fast path: a field's values in a batch folded in one step, a list at a time, when they are the usual ones.

Usual means: every value newer than the stored one and than the one before it, and plain (``gauge_float`` text
that ``float`` reads as a finite number, or ``binary`` sent as 0/1). Then the field's new record follows from the last
two values and the last change alone, and its values go to the metric store as one series. Anything else (a stale
or replayed value, a value that does not convert, metadata to follow) is declined here and takes the general path
(``batch.Batch._apply_group``), which gives the same result one value at a time; tests hold both to it.
"""

from __future__ import annotations

from itertools import islice
from math import isfinite
from operator import attrgetter, lt
from typing import Any, Final

from ..model import Record
from .caches import iso
from .state import FieldAcc, FieldGroup, Folded

BINARY_TEXT: Final = {"0": False, "1": True}
"""What MySensors binary sets carry; any other text takes ``convert_value``."""
_timestamp = attrgetter("timestamp")


def plain_values(metric_type: str, raws: list[Any]) -> list[Any] | None:
    """The raw values converted, when every one is plain; None otherwise (then the general path converts them
    one by one and fails the messages whose value does not fit)."""
    try:
        if metric_type == "gauge_float":
            values = list(map(float, raws))
            # the sum is finite only if every value is (inf and nan spread; a sum too big for a float declines
            # finite values too: the general path takes them)
            return values if isfinite(sum(values)) else None
        if metric_type == "binary":
            return list(map(BINARY_TEXT.__getitem__, raws))
    except (KeyError, TypeError, ValueError, OverflowError):
        pass
    return None


def _newer_plain(group: FieldGroup, metric_type: str, after_ts: int, after_seq: int
                 ) -> tuple[list[int], list[Any]] | None:
    """The group's timestamps and converted values when each is newer than (after_ts, after_seq) and than the
    one before it, and all are plain; None otherwise."""
    envelopes = group.envelopes
    first = envelopes[0]
    ts = first.timestamp
    if ts < after_ts or (ts == after_ts and first.sequence <= after_seq):
        return None
    values = plain_values(metric_type, group.values)
    if values is None:
        return None
    if len(values) == 1:
        return [ts], values
    stamps = list(map(_timestamp, envelopes))
    # The group follows the batch's order (timestamp, then sequence): with timestamps that always go up, no value
    # repeats the one before it (the general path tells such a replay from an update; equal times go there too).
    if not all(map(lt, stamps, islice(stamps, 1, None))):
        return None
    return stamps, values


def _last_change(stamps: list[int], values: list[Any], before: Any) -> int | None:
    """When the last value that differs from the one before it (``before`` for the first) came; None if none does."""
    i = len(values) - 1
    while i >= 0:
        if values[i] != (values[i - 1] if i else before):
            return stamps[i]
        i -= 1
    return None


def fold_known(group: FieldGroup, stored: Record, known_ts: int, known_seq: int
               ) -> tuple[Folded, list[int], list[Any]] | None:
    """A stored field this processor wrote last (so its order key ``known_ts``/``known_seq`` is known without
    parsing) whose metadata the batch does not change: its new record, the timestamps and the values. None when
    the batch's values are not the usual ones (then the general path does it all)."""
    op = group.template
    metric_type = stored["metricType"]
    if ((op.metric_type and op.metric_type != metric_type) or (op.unit and op.unit != stored.get("unit"))
            or (op.name and op.name != stored.get("name"))):
        return None  # metadata to follow (or to keep, by an ignore_* label): the general path
    newer = _newer_plain(group, metric_type, known_ts, known_seq)
    if newer is None:
        return None
    stamps, values = newer
    last = group.envelopes[-1]
    ts = stamps[-1]
    stamp = iso(ts)
    stored_current = stored["current"]
    current = {"value": values[-1], "isReceived": True, "timestamp": stamp, "sequence": last.sequence}
    if len(values) > 1:
        previous: Any = {"value": values[-2], "isReceived": True, "timestamp": iso(stamps[-2]),
                         "sequence": group.envelopes[-2].sequence}
    else:
        previous = stored_current
    new = {**stored, "current": current, "previous": previous, "lastSeen": stamp}
    changed = _last_change(stamps, values, stored_current.get("value") if stored_current else None)
    if changed is not None:
        new["noChangeSince"] = stamp if changed == ts else iso(changed)
    return Folded(new, ts, last.sequence, len(values)), stamps, values


def fold_newer(acc: FieldAcc, group: FieldGroup, metric_type: str, after_ts: int, after_seq: int,
               stored_value: Any) -> tuple[list[int], list[Any]] | None:
    """The general path's common case without a loop per value: a field's first values in the batch, all newer
    than the stored one and than the one before it, and plain. Does to ``acc`` exactly what the loop in
    ``Batch._apply_group`` would and returns the timestamps and values; or does nothing and returns None (then
    the loop does it)."""
    newer = _newer_plain(group, metric_type, after_ts, after_seq)
    if newer is None:
        return None
    stamps, values = newer
    envelopes = group.envelopes
    acc.applied = len(values)
    acc.ts, acc.seq, acc.value = stamps[-1], envelopes[-1].sequence, values[-1]
    if len(values) > 1:
        acc.p_ts, acc.p_seq, acc.p_value = stamps[-2], envelopes[-2].sequence, values[-2]
    changed = _last_change(stamps, values, stored_value)
    if changed is not None:
        acc.ncs_ms = changed
    return stamps, values
