"""What every repository checks of a record it is asked to store: its id (one copy, for every adapter's ``put``)."""

from __future__ import annotations

from typing import Any

from .model import ID_DEPTH, Kind


def checked_id(kind: Kind, record: Any) -> str:
    """The id of a record to store: a non-empty string with as many dotted segments as the kind's ids have
    (``gw``, ``gw.node``, … for device kinds); ``ValueError`` saying what is wrong otherwise."""
    entity_id = record.get("id") if isinstance(record, dict) else None
    if not isinstance(entity_id, str) or not entity_id:
        raise ValueError(f"{Kind(kind).value} record needs a non-empty string 'id'")
    if kind in ID_DEPTH and len(entity_id.split(".")) != ID_DEPTH[kind]:
        raise ValueError(f"{kind.value} id {entity_id!r} must have {ID_DEPTH[kind]} dotted segment(s)")
    return entity_id
