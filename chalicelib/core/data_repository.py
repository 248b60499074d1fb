"""Data repository: key/value documents after MyController v2 (``{id, readOnly, description, labels, data}``), which
templates and scripts read (variables ``resource_by_quick_id`` with ``data_repository``, ``quickId`` lookups) and a
resource handler or ``/api/action`` writes at a key path (``data_repository:<id>`` with ``keyPath``).

Pure: the model and the key-path update. ``data`` is free JSON; a write parses its payload as JSON when it is JSON
(``21.5``, ``{"on": true}``, ``"text"``) and keeps it as text otherwise, as the reference does; a ``readOnly``
repository is never written by actions.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import Field, field_validator

from mycontroller_protocol.ids import ID_PATTERN

from .errors import DomainError
from .model import CamelModel, Record

MAX_PATH_SEGMENTS: Final = 32


class DataRepositoryError(DomainError, ValueError):
    """A key path or a write that cannot be applied; the message says which part."""


class DataRepository(CamelModel):
    """One document. Keys besides these are kept as sent (the console's own)."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    id: str
    description: str = Field(default="", max_length=2048)
    read_only: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"data repository id {value!r} must be 1-128 letters, digits, '_', '-', ':', '@', '~'")
        return value


def parse_payload(payload: Any) -> Any:
    """A payload as the value to store: text that is JSON becomes that JSON, other text stays text."""
    if not isinstance(payload, str):
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def _segments(path: str) -> list[str]:
    parts = [part for part in path.strip().strip(".").split(".")] if path.strip().strip(".") else []
    if len(parts) > MAX_PATH_SEGMENTS:
        raise DataRepositoryError(f"keyPath {path!r} has more than {MAX_PATH_SEGMENTS} segments")
    if any(not part for part in parts):
        raise DataRepositoryError(f"keyPath {path!r} has an empty segment")
    return parts


def set_key_path(data: Any, path: str, value: Any) -> Any:
    """``data`` with ``value`` at the dotted ``path`` (maps created as needed; a numeric segment indexes an existing
    list, ``-1`` appends); the whole ``data`` replaced when ``path`` is empty. Never mutates ``data``."""
    parts = _segments(path)
    if not parts:
        return value

    def put(node: Any, index: int) -> Any:
        key = parts[index]
        last = index == len(parts) - 1
        if isinstance(node, list) and (key.isdigit() or key == "-1"):
            items = list(node)
            if key == "-1":
                items.append(value if last else put({}, index + 1))
                return items
            position = int(key)
            if position > len(items):
                raise DataRepositoryError(f"keyPath segment {key!r} is past the end of a list of {len(items)}")
            child = items[position] if position < len(items) else {}
            new = value if last else put(child, index + 1)
            if position == len(items):
                items.append(new)
            else:
                items[position] = new
            return items
        current = dict(node) if isinstance(node, dict) else {}
        current[key] = value if last else put(current.get(key), index + 1)
        return current

    return put(data, 0)


def write(record: Record, key_path: str, payload: Any) -> Record | None:
    """The repository record after an action writes ``payload`` at ``key_path`` of its ``data``; None when it is
    read-only (the reference skips such a write)."""
    if record.get("readOnly"):
        return None
    data = set_key_path(record.get("data") or {}, key_path, parse_payload(payload))
    if not isinstance(data, dict):
        raise DataRepositoryError("data must stay an object: give a keyPath to write a value inside it")
    return {**record, "data": data}
