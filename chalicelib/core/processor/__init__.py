"""The message processor: a batch of envelopes in; stored state, metrics, domain events and downlinks out.

It does what MyController's message processor does (create nodes/sources/fields on first sight, apply
values, answer requests, keep nodes up), with three properties the reference lacks:

* Idempotent and order-safe. A message id seen before is skipped. A value older (edge timestamp, then
  sequence) than the stored one is not applied, but still goes to metrics. Writes of field values are
  conditional (``put_many(if_newer=True)``) so concurrent batches cannot go back in time either. A value equal
  to the stored one (the same message, redelivered after a crash) is not written again but its event is
  announced again: events are at least once.
* Coalesced. Many values for one field in a batch cost one repository write and one ``updated`` event
  carrying the newest value; every value still goes to metrics. Node and source ``lastSeen`` alone is
  written at most once per ``last_seen_resolution_ms``.
* Per-message failures. A message that cannot be read or applied is reported with its reason; the rest of
  the batch completes.

Hot path: no pydantic on the way through (records are dicts), one ``get_many`` per kind per batch. Set messages
of a known sensor skip the interpreter (route cache); a field this processor stored last (the repository hands
back that very record) whose values in the batch are all newer is folded in one step and its values go to a
metric store with ``write_series`` as one series. Anything else takes the general path; ``Processor(fast_path=
False)`` takes it always, and tests hold both to the same results.

Modules: ``engine`` (the entry points: repeats and seen messages out, order), ``batch`` (one batch: read,
apply on the general path, store), ``fold`` (the fast path), ``requests`` (answers to devices' requests),
``caches`` (what is remembered between batches), ``state`` (what a batch gathers per entity), ``results``.
"""

from .engine import Processor
from .results import MessageFailure, ProcessResult

__all__ = ["MessageFailure", "ProcessResult", "Processor"]
