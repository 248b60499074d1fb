"""The node state job: nodes silent for longer than their inactive duration are marked down.

As in the reference: every node that is ``up`` and whose ``lastSeen`` is older than its inactive duration (node
label ``inactive_duration``, e.g. ``30m``; otherwise the system default, 15 minutes) becomes ``down``. Traffic
from the node marks it up again (the processor does that). Pure: records in, changed records out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ..model import Record, iso_from_ms, label, ms_from_iso
from .clock import DurationError, parse_duration

DEFAULT_INACTIVE_MS: Final = 15 * 60 * 1000


def inactive_ms(node: Record, default_ms: int = DEFAULT_INACTIVE_MS) -> int:
    """The node's own ``inactive_duration`` label, or the default when it has none or it does not parse."""
    text = label(node.get("labels"), "inactive_duration")
    if not text:
        return default_ms
    try:
        duration = parse_duration(text)
    except DurationError:
        return default_ms
    milliseconds = int(duration.total_seconds() * 1000)
    return milliseconds if milliseconds > 0 else default_ms


def nodes_gone_silent(nodes: Iterable[Record], now_ms: int, default_ms: int = DEFAULT_INACTIVE_MS) -> list[Record]:
    """The new records of the nodes to mark down now."""
    changed: list[Record] = []
    for node in nodes:
        state = node.get("state") or {}
        last_seen = node.get("lastSeen")
        if state.get("status") != "up" or not last_seen:
            continue
        limit = inactive_ms(node, default_ms)
        silent_for = now_ms - ms_from_iso(last_seen)
        if silent_for > limit:
            message = f"no traffic for {silent_for // 60000} min (inactive after {limit // 60000} min)"
            changed.append({**node, "state": {"status": "down", "message": message, "since": iso_from_ms(now_ms)}})
    return changed
