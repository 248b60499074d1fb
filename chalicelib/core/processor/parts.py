"""What a batch reads of its processor: the ports, the interpreters and what the processor learnt (``caches``),
apart from the processor's entry points (``engine.py``) so that a batch does not import its engine."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ..model import now_ms
from ..ops import Interpreter
from ..ports import MetricStore, Repository
from .caches import Caches


class ProcessorParts:
    """The long-lived parts of a processor (one per worker) that each batch works with."""

    def __init__(
        self,
        repository: Repository,
        metrics: MetricStore,
        interpreters: Mapping[str, Interpreter] | None = None,
        *,
        last_seen_resolution_ms: int = 60_000,
        clock: Callable[[], int] = now_ms,
        fast_path: bool = True,
        unchanged_resolution_ms: int = 0,
        keep_records_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if interpreters is None:
            from ..providers import default_interpreters

            interpreters = default_interpreters()
        self.repository = repository
        self.metrics = metrics
        self.interpreters = dict(interpreters)
        self.last_seen_resolution_ms = last_seen_resolution_ms
        self.clock = clock
        self.fast_path = fast_path
        """Off: every value takes the general path (the reference the fast path is tested against)."""
        self.unchanged_resolution_ms = unchanged_resolution_ms
        """A field's reading equal to its stored value, sooner than this after the stored one, is announced but not
        written (``Batch._unchanged``); 0: every reading is written."""
        self.keep_records_s = keep_records_s
        """How long a node or source read by a batch is taken as read by the next ones (``caches``); 0: never."""
        self.monotonic = monotonic
        self.routers: dict[str, Callable[[str], tuple[str, str] | None]] = {
            name: router for name, interpreter in self.interpreters.items()
            if (router := getattr(interpreter, "route_key", None)) is not None
        }
        self.route_key_tails: dict[str, tuple[str, int]] = {
            name: (str(tail[0]), int(tail[1])) for name, interpreter in self.interpreters.items()
            if (tail := getattr(interpreter, "route_key_tail", None)) and tail[0] and name in self.routers
        }
        """Providers whose route keys are the message up to a separator, the value after it: name → (separator,
        longest value). Their known keys are found by splitting the message (``Batch._interpret``)."""
        self.caches = Caches()
