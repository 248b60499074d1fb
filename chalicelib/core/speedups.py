"""The optional C speed-ups of the ingest hot path (``_speedups.c``, built by ``scripts/build_speedups.py``).

``native`` is the compiled module, or None when it is not built, is built for another Python, or
``MC_PURE_PYTHON=1`` is set: then the Python code does the same work, only slower. Every C function mirrors a
Python one and declines anything but the plain case, so both give the same results (tests/unit/test_speedups.py).
"""

from __future__ import annotations

import os
from types import ModuleType

FUNCTIONS = ("bind_slots", "buffer_series", "consecutive_ids", "distinct_gateways", "fold_groups", "group_keys",
             "in_order", "iso_from_ms", "message_ids", "pack_chunk", "parse_publish", "pick", "put_newer",
             "route_known", "store_fields", "touched")
"""What the Python code calls; a module without one of them is not used."""

native: ModuleType | None
if os.environ.get("MC_PURE_PYTHON", "").lower() in ("1", "true", "yes"):
    native = None
else:
    try:
        from . import _speedups as native  # type: ignore[attr-defined,no-redef]
    except ImportError:
        native = None
    if native is not None and not all(hasattr(native, name) for name in FUNCTIONS):
        native = None  # built from an older _speedups.c: not used until rebuilt (make rebuilds it)


def describe() -> str:
    """What the benchmarks print: which implementation ran."""
    return "C speed-ups" if native is not None else "pure Python"
