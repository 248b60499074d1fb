"""The processor's entry points: a batch in (duplicates and seen messages dropped, put in order), its result out."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from mycontroller_protocol.envelope import Envelope

from .batch import Batch
from .parts import ProcessorParts
from .results import ProcessResult

_message_id = attrgetter("message_id")
_gateway_id = attrgetter("gateway_id")
_timestamp = attrgetter("timestamp")
_sequence = attrgetter("sequence")


class Processor(ProcessorParts):
    """Applies batches of envelopes to the repository and the metric store. Long-lived (one per worker): what it
    learns of routes, fields and last seen times (``caches``) makes the next batch cheaper."""

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
