"""The processor's entry points: a batch in (duplicates and seen messages dropped, put in order), its result out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter

from mycontroller_protocol.envelope import Envelope

from ..model import now_ms
from ..ops import Interpreter
from ..ports import MetricStore, Repository
from .batch import Batch
from .caches import Caches
from .results import ProcessResult

_message_id = attrgetter("message_id")
_gateway_id = attrgetter("gateway_id")
_timestamp = attrgetter("timestamp")
_sequence = attrgetter("sequence")


class Processor:
    """Applies batches of envelopes to the repository and the metric store. Long-lived (one per worker): what it
    learns of routes, fields and last seen times (``caches``) makes the next batch cheaper."""

    def __init__(
        self,
        repository: Repository,
        metrics: MetricStore,
        interpreters: Mapping[str, Interpreter] | None = None,
        *,
        last_seen_resolution_ms: int = 60_000,
        clock: Callable[[], int] = now_ms,
        fast_path: bool = True,
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

    # ----------------------------------------------------------------------------------------- entry points

    def process(self, envelopes: Sequence[Envelope]) -> ProcessResult:
        """Apply a batch. Repository and metric store writes happen here; events and downlinks are returned
        for the caller to send, after which it calls ``acknowledge``."""
        result = ProcessResult()
        fresh = self._fresh(envelopes, result)
        if fresh is not None:
            Batch(self, *fresh, result).run()
        return result

    def forget_route(self, field_key: str) -> None:
        """Drop cached routes to a field whose values could not be applied (let them be interpreted again)."""
        self.caches.forget_route(field_key)

    def acknowledge(self, result: ProcessResult) -> None:
        """Remember the batch's messages as applied, once its events and downlinks are out."""
        if result.applied_ids:
            self.repository.mark_seen(result.applied_ids)

    def _fresh(self, envelopes: Sequence[Envelope], result: ProcessResult) -> tuple[list[Envelope], set[str]] | None:
        """The batch without repeats (the first one counts) and messages seen before, in order (gateway, edge
        timestamp, sequence), and its gateways' ids; None when nothing is left."""
        ids = list(map(_message_id, envelopes))
        unique = dict(zip(ids, envelopes, strict=True))
        if len(unique) == len(envelopes):
            candidates = list(envelopes)  # (sorted below: the caller's list stays as it was)
        else:  # a message twice in the batch
            result.duplicates += len(envelopes) - len(unique)
            unique = {}
            for envelope in envelopes:
                unique.setdefault(envelope.message_id, envelope)
            ids = list(unique)
            candidates = list(unique.values())
        seen = self.repository.seen(ids) if ids else set()
        result.duplicates += len(seen)
        batch = [e for e in candidates if e.message_id not in seen] if seen else candidates
        if not batch:
            return None
        # Sorted by (gateway, timestamp, sequence) as stable sorts by each, the last key first: on what edges send
        # (in order, one gateway a batch) each is a pass without moves and without a key tuple per message.
        gateway_ids = set(map(_gateway_id, batch))
        batch.sort(key=_sequence)
        batch.sort(key=_timestamp)
        if len(gateway_ids) > 1:
            batch.sort(key=_gateway_id)
        return batch, gateway_ids
