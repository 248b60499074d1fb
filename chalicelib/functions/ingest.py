"""The ingest function: an SQS batch of edge publishes through the processor, with partial batch failures.

An IoT rule invokes this function with every edge publish (many envelopes) itself (``IngestBatchWindow=0``, the
default: a batch of one, retried by Lambda when it must be, then kept in the DLQ), or puts it on the ingest queue,
whose mapping hands this function up to ``INGEST_BATCH_PUBLISHES`` (100) of them at once, gathered for at most the
window. All their envelopes go through
the processor as one batch, so that many updates to one field across the whole SQS batch cost one write and one
event. Then metrics are flushed, domain events go to the bus and replies to the gateways' down topics, and only
then are the messages marked as seen.

What fails, fails alone, and only what a retry could fix is retried:

* **For good** (permanent): a record that is not an ingest record, an envelope that cannot be read, a message its
  provider cannot read or whose value does not fit its field, a message needing a stored record that cannot be
  read (``UnreadableRecord``), anything raising ``ValueError``, ``TypeError``, ``KeyError`` and their kin
  (``processor.results.permanent``). The same bytes would fail the same way on every delivery, so the message
  is put in the dead letters at once (``DeadLetterSink``: the ingest DLQ in AWS, ``DATA_DIR/ingest-dead-letters
  .jsonl`` locally), alone, as an ingest record of just that envelope, with the reason; its record is
  acknowledged. Once the cause is fixed (a codec, a stored record), replaying the letter applies it.
* **For now** (transient): a store, network or conditional-write error. Its record is reported in
  ``batchItemFailures`` (powertools ``process_partial_response``), SQS retries just that record and, after
  ``maxReceiveCount``, moves it to the DLQ. A whole batch that raises (the repository down) is retried whole.
  Dead letters that cannot be kept (the DLQ unreachable) turn their records into retries too.

The good messages of a record were applied and marked seen either way, so a retry or a replay costs nothing for
them and the state is the same however often a batch is delivered.

Every record names the thing that published it (the ingest rule takes it from the topic ``mc/<thing>/up``;
``core/identity.py``). Envelopes for a gateway that another thing owns are refused before the processor sees
them: not applied, counted (``MessagesRefused``, ``IngestOutcome.refused``) and logged, and not reported as
failures, since a retry could not change who sent them. A gateway nobody owns is bound to the thing that speaks
for it first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from mycontroller_protocol.envelope import PUBLISH_VERSION, Envelope, EnvelopeError, encode_publish

from ..core.identity import PUBLISH_KEY, THING_KEY, Admission, GatewayOwners, Refusal, ingest_body, read_ingest_body
from ..core.model import EventType as EntityEvent
from ..core.model import Kind, event
from ..core.ports import DeadLetter, DeadLetterSink, DownlinkSender, EventBus, bus_event
from ..core.processor import MessageFailure, Processor, ProcessResult
from ..core.publish_reader import decode_publish
from ..observability import IN_LAMBDA, SERVICE, Logger, metrics, tracer
from .errors import FunctionError

logger = Logger(service=SERVICE, child=True)


class RecordFailed(FunctionError):
    """Raised for a record that must be retried (and, in the end, dead-lettered)."""


@dataclass(slots=True)
class IngestOutcome:
    result: ProcessResult
    failed_records: dict[str, str] = field(default_factory=dict)
    """SQS message id → why it failed for now: these records are retried."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """What failed for good, kept with the reason (not retried)."""
    messages: int = 0
    refused: list[Refusal] = field(default_factory=list)
    """Envelopes of a thing for a gateway another thing owns: not applied, not retried."""

    @property
    def refused_messages(self) -> int:
        return sum(len(refusal.message_ids) for refusal in self.refused)


class Ingest:
    """Runs SQS batches through the processor and sends what comes out (bus events, downlinks)."""

    def __init__(self, processor: Processor, bus: EventBus, downlink: DownlinkSender,
                 owners: GatewayOwners | None = None, *, dead_letters: DeadLetterSink | None = None) -> None:
        self.processor = processor
        self.bus = bus
        self.downlink = downlink
        self.owners = owners if owners is not None else GatewayOwners(processor.repository)
        self.dead_letters = dead_letters
        """None: letters are only logged (tests that build the function alone)."""

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda entry point's body: returns the partial batch response. A publish the IoT rule handed over
        itself (``{"thing", "publish"}``, no queue) is run as a batch of one record; if it must be retried the
        invocation raises (Lambda retries it, then keeps it in the DLQ)."""
        if is_direct(event):
            return self.handle_direct(event, context)
        records = event.get("Records") or []
        correlation = getattr(context, "aws_request_id", None) or (records[0].get("messageId") if records else None)
        logger.set_correlation_id(correlation)
        outcome = self.run(records)
        failed = outcome.failed_records

        def record_handler(record: SQSRecord) -> None:
            reason = failed.get(record.message_id)
            if reason is not None:
                raise RecordFailed(reason)

        batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response = dict(process_partial_response(event=event, record_handler=record_handler, processor=batch,
                                                 context=context))
        if IN_LAMBDA:
            metrics.flush_metrics()
        return response

    def handle_direct(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        record_id = str(getattr(context, "aws_request_id", None) or "direct")
        logger.set_correlation_id(record_id)
        outcome = self.run([{"messageId": record_id, "body": json.dumps(event, separators=(",", ":"))}])
        if IN_LAMBDA:
            metrics.flush_metrics()
        reason = outcome.failed_records.get(record_id)
        if reason is not None:
            raise RecordFailed(reason)
        return {"messages": outcome.messages, "deadLettered": len(outcome.dead_letters)}

    @tracer.capture_method
    def run(self, records: list[dict[str, Any]]) -> IngestOutcome:
        started = time.perf_counter()
        publishes: list[tuple[str, list[Envelope]]] = []
        publish_records: list[str] = []
        record_of: dict[str, str] = {}
        failed: dict[str, str] = {}
        letters: list[tuple[str, DeadLetter]] = []
        """(the SQS record it came from, the letter): what failed for good."""
        for record in records:
            record_id = str(record.get("messageId", ""))
            raw_body = record.get("body") or ""
            try:
                thing, body = read_ingest_body(raw_body)
                good, bad = decode_publish(body)
            except EnvelopeError as error:
                letters.append((record_id, DeadLetter(str(raw_body), f"poison record: {error}")))
                logger.warning("poison record", extra={"sqs_message_id": record_id, "reason": str(error)})
                continue
            if bad:
                letters.append((record_id, _bad_envelopes_letter(thing, body, bad)))
                logger.warning("bad envelopes", extra={"sqs_message_id": record_id, "count": len(bad),
                                                       "reasons": [reason for _, reason in bad[:5]]})
            for envelope in good:
                record_of[envelope.message_id] = record_id
            publishes.append((thing, good))
            publish_records.append(record_id)

        admission = self.owners.admit(publishes)
        if admission.refused:
            logger.warning("envelopes refused: their gateway belongs to another edge device", extra={
                "count": admission.refused_count,
                "refused": [{"thing": r.thing, "gateway": r.gateway_id, "owner": r.owner,
                             "messages": len(r.message_ids)} for r in admission.refused[:10]],
            })
        envelopes = admission.admitted
        result = self.processor.process(envelopes)
        _announce_bindings(result, admission)
        self.processor.metrics.flush()
        if result.events:
            self.bus.publish([bus_event(e) for e in result.events])
        if result.downlinks:
            self.downlink.send(result.downlinks)
        self.processor.acknowledge(result)

        lasting: dict[str, MessageFailure] = {}
        for failure in result.failures:
            if failure.permanent:
                lasting[failure.message_id] = failure
            else:
                record_id = record_of.get(failure.message_id, "")
                failed.setdefault(record_id, f"message {failure.message_id}: {failure.reason}")
        if lasting:
            letters.extend(_failure_letters(publishes, publish_records, lasting))
        if result.failures:
            logger.warning("messages failed", extra={
                "count": len(result.failures), "for_good": sum(f.permanent for f in result.failures),
                "failures": [{"messageId": f.message_id, "gateway": f.gateway_id, "reason": f.reason,
                              "retried": not f.permanent} for f in result.failures[:10]],
            })
        kept = self._keep(letters, failed)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if IN_LAMBDA:  # custom metrics are billed each a month: the three no AWS metric or log line gives
            metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=len(result.applied_ids))
            # failures and refusals only when there are some: a metric is billed for the hours it is written in, and
            # a healthy site's would be zeros all month (no data reads as none; alarms on them treat it so)
            for name, value in (("MessagesFailed", len(result.failures)),
                                ("MessagesRefused", admission.refused_count)):
                if value:
                    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        # a clean batch's line at DEBUG: at a home's pace it was most of the ingest's log bill (docs/cost.md); what
        # failed, was refused or dead-lettered is logged above at WARNING and this line goes out at INFO with it
        notable = result.failures or kept or failed or admission.refused_count
        (logger.info if notable else logger.debug)("batch processed", extra={
            "records": len(records), "messages": len(envelopes), "applied": len(result.applied_ids),
            "duplicates": result.duplicates, "stale": result.stale, "failures": len(result.failures),
            "dead_lettered": len(kept), "retried_records": len(failed), "refused": admission.refused_count,
            "writes": result.repo_writes, "events": len(result.events), "downlinks": len(result.downlinks),
            "elapsed_ms": round(elapsed_ms, 2),
        })
        return IngestOutcome(result, failed, kept, len(envelopes), admission.refused)

    def _keep(self, letters: list[tuple[str, DeadLetter]], failed: dict[str, str]) -> list[DeadLetter]:
        """Put the letters in the dead letters; if they cannot be kept, their records are retried instead."""
        if not letters:
            return []
        kept = [item for _, item in letters]
        logger.warning("dead-lettered: failed for good, not retried", extra={
            "count": len(kept), "reasons": [item.reason for item in kept[:10]]})
        if self.dead_letters is None:
            return kept
        try:
            self.dead_letters.put(kept)
        except Exception as error:  # the DLQ or the disk is out of reach: let the queue retry them
            logger.exception("dead letters could not be kept; their records are retried")
            for record_id, item in letters:
                failed.setdefault(record_id, f"{item.reason} (not dead-lettered: {type(error).__name__}: {error})")
            return []
        return kept


def is_direct(event: Any) -> bool:
    """A publish as the ingest rule makes it (``core.identity.ingest_body``), given by the rule itself rather than
    in an SQS batch."""
    return isinstance(event, dict) and "Records" not in event and THING_KEY in event and PUBLISH_KEY in event


def _bad_envelopes_letter(thing: str, body: bytes, bad: list[tuple[int, str]]) -> DeadLetter:
    """The envelopes of a publish that cannot be read, as an ingest record of their own (the good ones beside
    them were applied), with what is wrong with each."""
    reason = "; ".join(f"envelope {index}: {why}" for index, why in bad[:5])
    try:
        wires = json.loads(body)["e"]
        publish = json.dumps({"v": PUBLISH_VERSION, "e": [wires[index] for index, _ in bad]}, separators=(",", ":"))
    except (ValueError, KeyError, TypeError, IndexError):  # (decode_publish read it: not expected)
        publish = body.decode("utf-8", "replace")
    return DeadLetter(ingest_body(thing, publish), reason)


def _failure_letters(publishes: list[tuple[str, list[Envelope]]], publish_records: list[str],
                     lasting: dict[str, MessageFailure]) -> list[tuple[str, DeadLetter]]:
    """A letter per message that failed for good: an ingest record of that envelope alone, from its thing."""
    letters: list[tuple[str, DeadLetter]] = []
    for (thing, envelopes), record_id in zip(publishes, publish_records, strict=True):
        for envelope in envelopes:
            failure = lasting.pop(envelope.message_id, None)  # (once, should a message come twice)
            if failure is not None:
                reason = f"message {envelope.message_id} of gateway {envelope.gateway_id}: {failure.reason}"
                letters.append((record_id, DeadLetter(ingest_body(thing, encode_publish([envelope])), reason)))
    return letters


def _announce_bindings(result: ProcessResult, admission: Admission) -> None:
    """Gateways bound to their thing by this batch were stored before the processor ran, so it took them as known:
    a gateway's first event stays ``created`` as for any new gateway, and a claimed one is announced ``updated``."""
    pending = {**{gateway_id: EntityEvent.UPDATED for gateway_id in admission.claimed},
               **{gateway_id: EntityEvent.CREATED for gateway_id in admission.created}}
    if not pending:
        return
    for domain_event in result.events:
        if domain_event.entity_type == Kind.GATEWAY.value and domain_event.entity_id in pending:
            domain_event.type = pending.pop(domain_event.entity_id).value
    records = {**admission.claimed, **admission.created}
    result.events[:0] = [event(kind, Kind.GATEWAY, records[gateway_id]) for gateway_id, kind in pending.items()]
