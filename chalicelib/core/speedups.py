"""The optional C speed-ups of the ingest hot path (``_speedups.c``, built by ``scripts/build_speedups.py``).

``native`` is the compiled module, or None when it is not built, is built for another Python, or
``MC_PURE_PYTHON=1`` is set: then the Python code does the same work, only slower. Every C function mirrors a
Python one and declines anything but the plain case, so both give the same results (tests/unit/test_speedups.py).
"""

from __future__ import annotations

import os
from types import ModuleType

native: ModuleType | None
if os.environ.get("MC_PURE_PYTHON", "").lower() in ("1", "true", "yes"):
    native = None
else:
    try:
        from . import _speedups as native  # type: ignore[attr-defined,no-redef]
    except ImportError:
        native = None


def describe() -> str:
    """What the benchmarks print: which implementation ran."""
    return "C speed-ups" if native is not None else "pure Python"
