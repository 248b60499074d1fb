"""Read-modify-write without lost updates, over the repository's versions (``ports.Repository``).

Two writers of one record (an API label edit and an ingest batch, two task runs, the processor and the edge's
reported state) each read it, change it and write it back. Written blindly, the second write drops the first one's
change. Here every such write is conditional on the version read; when another writer got there first the change
is made again on what is stored now:

* ``update``: one record, a change function (``new = change(current)``), called again on the newer record after a
  conflict. For API edits, task, schedule and handler state, the edge's reported state.
* ``write_changes``: records a batch read earlier and changed (the processor). What the batch changed (from the
  record it read, ``base``, to the one it made, ``ours``) is re-applied onto the stored record (``rebase``), so a
  concurrent edit of other keys, or of other labels, survives beside the batch's.

After a second conflict in a row they wait a little (random, growing to ``MAX_WAIT_S``) so that writers that keep
colliding spread out; they give up after ``MAX_ATTEMPTS``, raising the last ``ConditionFailed``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .model import Kind, Record
from .ports import ConditionFailed, Repository

MAX_ATTEMPTS: Final = 16
MAX_WAIT_S: Final = 0.05
LATEST_KEYS: Final = frozenset({"lastSeen", "lastTransaction"})
"""Keys two writers may both advance (fixed-width RFC 3339 times): a rebase keeps the later one."""
_MISSING: Final[Any] = object()


def rebase(base: Record | None, ours: Record, theirs: Record | None, *,
           latest: Collection[str] = LATEST_KEYS) -> Record:
    """``ours``' changes since ``base`` made on ``theirs`` instead.

    A key ours changed takes our value; when both sides hold a dict there (labels, others, state), only the keys
    of it that ours changed are taken, so a label added by one writer and another label changed by the other are
    both kept. A key ours removed is removed. Keys in ``latest`` keep the greater of the two values. With nothing
    stored (``theirs`` None, e.g. deleted meanwhile) the result is ``ours``; with nothing read (``base`` None),
    every key of ours counts as changed."""
    if theirs is None:
        return ours
    before = base or {}
    merged = dict(theirs)
    for key, value in ours.items():
        old = before.get(key, _MISSING)
        if old == value:
            continue
        current = theirs.get(key, _MISSING)
        if key in latest and isinstance(value, str) and isinstance(current, str):
            merged[key] = max(value, current)
        elif isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _merge_dict(old if isinstance(old, dict) else {}, value, current)
        else:
            merged[key] = value
    for key in before:
        if key not in ours:
            merged.pop(key, None)
    return merged


def _merge_dict(old: dict[str, Any], new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """One level down: the keys ``new`` changed from ``old``, onto ``current``."""
    merged = dict(current)
    for key, value in new.items():
        if old.get(key, _MISSING) != value:
            merged[key] = value
    for key in old:
        if key not in new:
            merged.pop(key, None)
    return merged


def backoff(attempt: int) -> None:
    """Wait before attempt ``attempt + 1`` (0-based): not after the first conflict, then up to 2 ms doubling."""
    if attempt > 0:
        time.sleep(random.uniform(0, min(MAX_WAIT_S, 0.001 * 2 ** attempt)))


def update(repository: Repository, kind: Kind, entity_id: str,
           change: Callable[[Record | None], Record | None]) -> Record | None:
    """Write ``change(current)`` conditionally on the version read; on a conflict read again and call ``change`` on
    the newer record. ``change`` returning ``None`` writes nothing (and that ``None`` is returned); it may raise to
    refuse. Returns the record written."""
    for attempt in range(MAX_ATTEMPTS):
        current, version = repository.get_versioned(kind, entity_id)
        record = change(current)
        if record is None:
            return None
        try:
            repository.put(kind, record, expected_version=version)
        except ConditionFailed:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
            backoff(attempt)
            continue
        return record
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(slots=True)
class Written:
    """What ``write_changes`` wrote: each id's record as stored (``ours``, or ours rebased on a concurrent change)
    and the ids ``if_newer`` found newer values stored for (not written)."""

    records: dict[str, Record] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    rebased: set[str] = field(default_factory=set)
    """Ids whose record was rebased on a concurrent change: ``records`` holds what was written instead of ours."""


def write_changes(repository: Repository, kind: Kind, changes: Sequence[tuple[Record | None, Record]], *,
                  if_newer: bool = False, versions: Mapping[str, int] | None = None) -> Written:
    """Write each ``(base, ours)``: ``ours`` made from ``base`` (the record read earlier, ``None`` if there was
    none), unless the stored record is no longer ``base``, in which case ours is rebased onto what is stored.

    ``versions`` are the versions ``base`` was read with, when the caller has them; without them they are read
    here (one ``get_many_versioned``), and a stored record that is not ``base`` (by identity, else by value) is
    rebased before the first write. Ids appear once each."""
    written = Written()
    if not changes:
        return written
    pending: list[tuple[Record | None, int, Record]] = []
    if versions is None:
        stored = repository.get_many_versioned(kind, [ours["id"] for _, ours in changes])
        for base, ours in changes:
            theirs, version = stored.get(ours["id"], (None, 0))
            if theirs is not base and theirs != base:
                written.rebased.add(ours["id"])
                ours, base = rebase(base, ours, theirs), theirs
            pending.append((base, version, ours))
    else:
        pending = [(base, versions.get(ours["id"], 0), ours) for base, ours in changes]
    for attempt in range(MAX_ATTEMPTS):
        expected = {ours["id"]: version for _, version, ours in pending}
        try:
            written.stale.extend(repository.put_many(kind, [ours for _, _, ours in pending], if_newer=if_newer,
                                                     expected_versions=expected))
            lost: set[str] = set()
        except ConditionFailed as failure:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
            written.stale.extend(failure.stale)
            lost = set(failure.ids)
        stale = set(written.stale)
        for _, _, ours in pending:
            if ours["id"] not in lost and ours["id"] not in stale:
                written.records[ours["id"]] = ours
        if not lost:
            return written
        backoff(attempt)
        again = [entry for entry in pending if entry[2]["id"] in lost]
        fresh = repository.get_many_versioned(kind, lost)
        pending = []
        for base, _, ours in again:
            theirs, version = fresh.get(ours["id"], (None, 0))
            written.rebased.add(ours["id"])
            pending.append((theirs, version, rebase(base, ours, theirs)))
    raise AssertionError("unreachable")  # pragma: no cover
