"""Process start-up for the long-lived workers (a warm Lambda, the local stack): the garbage collector's settings.

The ingest path makes and drops tens of thousands of short-lived containers a second. With CPython's default
first-generation threshold (700) the collector runs every few hundred messages and walks what is young; most
of that work finds nothing, because the processor's objects are not cyclic. ``tune_gc`` moves what start-up
made (modules, tables, caches) out of the collector's sight (``gc.freeze``) and lets the first generation grow
to a few thousand objects before a collection. Cycles are still collected, only less often; the memory that may
wait for a collection is a few thousand small objects.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (5_000, 10, 10)


def tune_gc() -> None:
    """Call once, after start-up (imports, adapters) and before the work begins."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
