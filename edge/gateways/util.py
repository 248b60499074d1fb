"""Small helpers the gateway plugins share: durations as the reference writes them, backoff, id cleaning."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?", re.IGNORECASE)
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ID_BAD = re.compile(r"[^A-Za-z0-9_\-:@+~]+")


def parse_duration(value: Any, default: float) -> float:
    """Seconds from a Go-style duration ("10ms", "1m30s", "24h") or a bare number of seconds.

    The reference's configs write durations the Go way; a value we cannot read falls back to ``default``
    rather than stopping a gateway over a typo.
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    total, pos = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return default
        total += float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else default


def reconnect_delay(config: dict[str, Any]) -> float:
    """The cap of the reconnect backoff: ``reconnectDelay`` (default 15 s, at least 1 s, as the reference)."""
    return max(1.0, parse_duration(config.get("reconnectDelay"), 15.0))


class Backoff:
    """Exponential backoff that starts small and stops growing at ``cap``.

    A device that blips comes back within a fraction of a second; one that is gone for good is not hammered.
    ``reset`` after a connection that worked.
    """

    def __init__(self, cap: float, first: float = 0.25) -> None:
        self.cap = max(cap, 0.001)
        self.first = min(first, self.cap)
        self._next = self.first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


def clean_id(value: Any, fallback: str = "unknown") -> str:
    """An id segment the cloud accepts (no dots, no spaces): "/boot/efi" → "boot_efi"."""
    text = _ID_BAD.sub("_", str(value)).strip("_")[:128]
    return text or fallback


def data_dir(gateway_id: str, config: dict[str, Any], ctx: Any = None) -> Path:
    """Where a gateway keeps its own durable state.

    ``config["dataDir"]`` wins, then a ``data_dir`` the context may offer, else a directory under the system
    temp dir (survives an agent restart, not a reboot on hosts that clear /tmp).
    """
    base = config.get("dataDir") or getattr(ctx, "data_dir", None)
    path = Path(base) / clean_id(gateway_id) if base else Path(tempfile.gettempdir()) / "mycontroller-edge" / clean_id(
        gateway_id)
    path.mkdir(parents=True, exist_ok=True)
    return path
