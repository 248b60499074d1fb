"""Which of two field records is the newer reading: the rule of ``Repository.put_many(if_newer=True)``, one copy for
the adapters that apply it in Python (memory, SQLite; DynamoDB states it as a condition expression)."""

from __future__ import annotations

from .model import Record


def is_stale(stored: Record, record: Record) -> bool:
    """Whether ``record`` must not replace ``stored``: the stored ``current`` (timestamp, then sequence) is at least
    as new. The usual shape inlined (it runs for every field of an ingest batch)."""
    try:
        old, new = stored["current"], record["current"]
        old_ts, new_ts = old["timestamp"] or "", new["timestamp"] or ""
        return bool(old_ts > new_ts or (old_ts == new_ts and old["sequence"] >= new["sequence"]))
    except (KeyError, TypeError):
        return _newer_or_equal(stored, record)


def _newer_or_equal(stored: Record, record: Record) -> bool:
    """``is_stale`` of any shape. Timestamps are fixed-width RFC 3339 strings, so string order is time order; none
    sorts first."""
    old, new = stored.get("current"), record.get("current")
    old_ts = (old.get("timestamp") or "") if isinstance(old, dict) else ""
    new_ts = (new.get("timestamp") or "") if isinstance(new, dict) else ""
    if old_ts != new_ts:
        return old_ts > new_ts
    old_seq = (old.get("sequence") or 0) if isinstance(old, dict) else 0
    new_seq = (new.get("sequence") or 0) if isinstance(new, dict) else 0
    return bool(old_seq >= new_seq)
