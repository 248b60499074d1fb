"""The ingest function: an SQS batch of edge publishes through the processor, with partial batch failures.

An IoT rule puts every edge publish (many envelopes) on the ingest queue; Lambda hands this function up to
``INGEST_BATCH_PUBLISHES`` (100) of them at once, gathered for at most a second. All their envelopes go through
the processor as one batch, so that many updates to one field across the whole SQS batch cost one write and one
event. Then metrics are flushed, domain events go to the bus and replies to the gateways' down topics, and only
then are the messages marked as seen.

A record whose body is not a publish, or that holds a message that failed, is reported in
``batchItemFailures`` (powertools ``process_partial_response``): SQS retries just that record and, after
``maxReceiveCount``, moves it to the DLQ. Its good messages were applied and marked seen, so the retry
costs nothing for them and the state is the same however often a batch is delivered.

Every record names the thing that published it (the ingest rule takes it from the topic ``mc/<thing>/up``;
``core/identity.py``). Envelopes for a gateway that another thing owns are refused before the processor sees
them: not applied, counted (``MessagesRefused``, ``IngestOutcome.refused``) and logged, and not reported as
failures, since a retry could not change who sent them. A gateway nobody owns is bound to the thing that speaks
for it first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..core.envelope import Envelope, EnvelopeError, decode_publish
from ..core.identity import Admission, GatewayOwners, Refusal, read_ingest_body
from ..core.model import EventType as EntityEvent
from ..core.model import Kind, event
from ..core.ports import DownlinkSender, EventBus, bus_event
from ..core.processor import Processor, ProcessResult
from ..observability import IN_LAMBDA, SERVICE, Logger, metrics, tracer
from .errors import FunctionError

logger = Logger(service=SERVICE, child=True)


class RecordFailed(FunctionError):
    """Raised for a record that must be retried (and, in the end, dead-lettered)."""


@dataclass(slots=True)
class IngestOutcome:
    result: ProcessResult
    failed_records: dict[str, str] = field(default_factory=dict)
    """SQS message id → why it failed."""
    messages: int = 0
    refused: list[Refusal] = field(default_factory=list)
    """Envelopes of a thing for a gateway another thing owns: not applied, not retried."""

    @property
    def refused_messages(self) -> int:
        return sum(len(refusal.message_ids) for refusal in self.refused)


class Ingest:
    """Runs SQS batches through the processor and sends what comes out (bus events, downlinks)."""

    def __init__(self, processor: Processor, bus: EventBus, downlink: DownlinkSender,
                 owners: GatewayOwners | None = None) -> None:
        self.processor = processor
        self.bus = bus
        self.downlink = downlink
        self.owners = owners if owners is not None else GatewayOwners(processor.repository)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda entry point's body: returns the partial batch response."""
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

    @tracer.capture_method
    def run(self, records: list[dict[str, Any]]) -> IngestOutcome:
        started = time.perf_counter()
        publishes: list[tuple[str, list[Envelope]]] = []
        record_of: dict[str, str] = {}
        failed: dict[str, str] = {}
        for record in records:
            record_id = str(record.get("messageId", ""))
            try:
                thing, body = read_ingest_body(record.get("body") or "")
                good, bad = decode_publish(body)
            except EnvelopeError as error:
                failed[record_id] = f"poison record: {error}"
                logger.warning("poison record", extra={"sqs_message_id": record_id, "reason": str(error)})
                continue
            if bad:
                failed[record_id] = "; ".join(f"envelope {index}: {reason}" for index, reason in bad[:5])
                logger.warning("bad envelopes", extra={"sqs_message_id": record_id, "count": len(bad),
                                                       "reasons": [reason for _, reason in bad[:5]]})
            for envelope in good:
                record_of[envelope.message_id] = record_id
            publishes.append((thing, good))

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

        for failure in result.failures:
            record_id = record_of.get(failure.message_id, "")
            failed.setdefault(record_id, f"message {failure.message_id}: {failure.reason}")
        if result.failures:
            logger.warning("messages failed", extra={
                "count": len(result.failures),
                "failures": [{"messageId": f.message_id, "gateway": f.gateway_id, "reason": f.reason}
                             for f in result.failures[:10]],
            })
        elapsed_ms = (time.perf_counter() - started) * 1000
        if IN_LAMBDA:
            for name, unit, value in (
                ("MessagesProcessed", MetricUnit.Count, len(result.applied_ids)),
                ("MessagesFailed", MetricUnit.Count, len(result.failures)),
                ("MessagesRefused", MetricUnit.Count, admission.refused_count),
                ("RecordsFailed", MetricUnit.Count, len(failed)),
                ("BatchSize", MetricUnit.Count, len(envelopes)),
                ("ProcessingTime", MetricUnit.Milliseconds, elapsed_ms),
                ("RepositoryWrites", MetricUnit.Count, result.repo_writes),
                ("EventsPublished", MetricUnit.Count, len(result.events)),
            ):
                metrics.add_metric(name=name, unit=unit, value=value)
        logger.info("batch processed", extra={
            "records": len(records), "messages": len(envelopes), "applied": len(result.applied_ids),
            "duplicates": result.duplicates, "stale": result.stale, "failures": len(result.failures),
            "refused": admission.refused_count,
            "writes": result.repo_writes, "events": len(result.events), "downlinks": len(result.downlinks),
            "elapsed_ms": round(elapsed_ms, 2),
        })
        return IngestOutcome(result, failed, len(envelopes), admission.refused)


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
