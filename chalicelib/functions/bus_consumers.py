"""The bus consumers as Lambda runs them: SQS batches of EventBridge events → forward payload, tasks, notify.

Invoking a function once per domain event made the bus the dearest part of the stack (about 700 events per 1,000
device messages, three consumers: ~2,100 invocations). So each EventBridge rule on the bus (``infra/template.py``)
targets its own SQS queue (DLQ after ``maxReceiveCount``), and an event source mapping hands the function up to
``BatchSize`` events at once. A record's body is the event as the rule delivered it: ``{"version", "id",
"source", "detail-type", "detail", …}``.

* A record whose body is not such an event is poison: it alone is reported in ``batchItemFailures`` (Powertools
  ``process_partial_response``), SQS retries it and finally dead-letters it; the rest of the batch is processed.
* Forward payload and tasks handle the events one by one, in the order of the batch; an event whose work raised
  (a downlink or store failure) fails its record alone. Tasks also fail the record when an evaluation failed, so
  it is retried: trigger ids derive from the event's content, so tasks that already ran it skip the redelivery.
* Websocket notify calls ``WebsocketService.notify`` once with all the batch's events: one read of the
  connections per batch, not per event. If that call fails, every record it carried is retried; a retried event
  older than ``NOTIFY_MAX_AGE_S`` is dropped rather than pushed late.

The functions still take a single EventBridge event (``{"detail": …}``, no ``Records``) and answer as before, so
a rule can target them directly again and the tests of that form keep working.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..observability import SERVICE, Logger
from .errors import FunctionError

if TYPE_CHECKING:
    from ..services.websocket import WebsocketService
    from .forward import ForwardPayloadFunction
    from .tasks import TaskFunction

logger = Logger(service=SERVICE, child=True)

NOTIFY_MAX_AGE_S: Final = 60.0
"""Websocket pushes older than this are dropped, not sent late (as the rule's target allowed before the queue)."""
EVALUATION_FAILED: Final = "evaluation failed"
"""``TaskRun.message`` of an evaluation that raised (store or queue trouble): worth a retry."""

Detail = dict[str, Any]


class BadRecord(FunctionError):
    """A record whose body is not an EventBridge event: poison, retried by SQS and then dead-lettered."""


class RetryRecord(FunctionError):
    """A record whose event was not fully handled: SQS delivers it again."""


def is_sqs_batch(event: Any) -> bool:
    """An event source mapping's batch (``{"Records": [...]}``), as opposed to one EventBridge event."""
    return isinstance(event, Mapping) and isinstance(event.get("Records"), list)


def detail_of(record: SQSRecord) -> Detail:
    """The ``detail`` of the EventBridge event a record carries; ``BadRecord`` when it is not one."""
    body = record.raw_event.get("body")
    if not isinstance(body, str):
        raise BadRecord("record without a body")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise BadRecord(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRecord("body is not a JSON object")
    detail = document.get("detail")
    if not isinstance(detail, dict):
        raise BadRecord("body is not an EventBridge event: no 'detail' object")
    return detail


def _partial_response(event: Mapping[str, Any], context: Any,
                      record_handler: Callable[[SQSRecord], None]) -> dict[str, Any]:
    if not event["Records"]:
        return {"batchItemFailures": []}  # Powertools refuses an empty batch; nothing failed
    batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=dict(event), record_handler=record_handler, processor=batch,
                                         context=context))


def _bad(consumer: str, record: SQSRecord, error: BadRecord) -> BadRecord:
    logger.warning("poison bus record", extra={"consumer": consumer,
                                               "sqs_message_id": record.raw_event.get("messageId"),
                                               "reason": str(error)})
    return error


def for_each(event: Mapping[str, Any], context: Any, handle: Callable[[Detail], None], *,
             consumer: str) -> dict[str, Any]:
    """``handle(detail)`` for each record, in batch order; one that raises fails its record alone."""
    if context is not None:
        logger.set_correlation_id(getattr(context, "aws_request_id", None))

    def record_handler(record: SQSRecord) -> None:
        try:
            detail = detail_of(record)
        except BadRecord as error:
            raise _bad(consumer, record, error) from None
        try:
            handle(detail)
        except Exception as error:  # reported for this record alone; SQS delivers it again
            logger.warning("bus record failed; it will be retried", extra={
                "consumer": consumer, "sqs_message_id": record.message_id, "entity": detail.get("entityQuickId"),
                "reason": f"{type(error).__name__}: {str(error)[:300]}"})
            raise

    response = _partial_response(event, context, record_handler)
    logger.info("bus batch handled", extra={"consumer": consumer, "records": len(event["Records"]),
                                            "failed": len(response.get("batchItemFailures") or [])})
    return response


def for_all(event: Mapping[str, Any], context: Any, handle: Callable[[list[Detail]], None], *,
            consumer: str, keep: Callable[[SQSRecord], bool] | None = None) -> dict[str, Any]:
    """``handle(details)`` once with every good record's detail, in batch order. Poison records fail alone; if
    ``handle`` raises, every record it was given fails (they are retried together). Records ``keep`` refuses are
    acknowledged without being handled."""
    if context is not None:
        logger.set_correlation_id(getattr(context, "aws_request_id", None))
    details: list[Detail] = []
    bad: dict[str, BadRecord] = {}
    skipped = 0
    for raw in event["Records"]:
        if not isinstance(raw, dict):
            continue  # not a record at all: the batch processor reports it
        record = SQSRecord(raw)
        try:
            detail = detail_of(record)
        except BadRecord as error:
            bad[str(raw.get("messageId"))] = _bad(consumer, record, error)
            continue
        if keep is not None and not keep(record):
            skipped += 1
            continue
        details.append(detail)
    failure: Exception | None = None
    if details:
        try:
            handle(details)
        except Exception as error:  # the whole call failed (e.g. the store): retry what it carried
            logger.exception("bus batch failed", extra={"consumer": consumer, "events": len(details)})
            failure = error

    def record_handler(record: SQSRecord) -> None:
        error = bad.get(record.message_id)
        if error is not None:
            raise error
        if failure is not None:
            raise RetryRecord(f"{type(failure).__name__}: {failure}")

    response = _partial_response(event, context, record_handler)
    logger.info("bus batch handled", extra={"consumer": consumer, "records": len(event["Records"]),
                                            "events": len(details), "skipped": skipped,
                                            "failed": len(response.get("batchItemFailures") or [])})
    return response


def _direct_detail(event: Any) -> Detail:
    """The ``detail`` of a single EventBridge event (anything else: empty, which the functions ignore)."""
    detail = event.get("detail") if isinstance(event, Mapping) else None
    return detail if isinstance(detail, dict) else {}


# --------------------------------------------------------------------------------------------- the consumers


def forward_payload(function: ForwardPayloadFunction, event: Any, context: Any = None) -> dict[str, Any]:
    """``field.updated`` events → downlinks to the mappings' destination fields. A batch answers its partial
    batch response; a single event ``{"sent", "failed"}``."""
    if is_sqs_batch(event):
        def handle(detail: Detail) -> None:
            function.handle(detail)  # downlink failures raise (retry); unsendable mappings are logged

        return for_each(event, context, handle, consumer="forward_payload")
    plan = function.handle(_direct_detail(event))
    return {"sent": len(plan.downlinks), "failed": [f.mapping_id for f in plan.failures]}


def tasks(function: TaskFunction, event: Any, context: Any = None) -> dict[str, Any]:
    """Domain events → the tasks they match, evaluated in batch order. A batch answers its partial batch
    response (a record whose evaluation failed is retried); a single event ``{"evaluated": [task ids]}``."""
    if is_sqs_batch(event):
        def handle(detail: Detail) -> None:
            failed = [run.id for run in function.handle(detail) if run.message == EVALUATION_FAILED]
            if failed:
                raise RetryRecord(f"evaluation failed for task(s) {', '.join(failed[:5])}")

        return for_each(event, context, handle, consumer="tasks")
    runs = function.handle(_direct_detail(event))
    return {"evaluated": [run.id for run in runs if run.outcome is not None and run.outcome.evaluated]}


def sent_within(max_age_s: float, now: Callable[[], float] = time.time) -> Callable[[SQSRecord], bool]:
    """Whether a record was put on its queue at most ``max_age_s`` ago (SQS's ``SentTimestamp``; without one:
    yes)."""
    def recent(record: SQSRecord) -> bool:
        sent = (record.raw_event.get("attributes") or {}).get("SentTimestamp")
        try:
            return sent is None or now() * 1000 - int(sent) <= max_age_s * 1000
        except (TypeError, ValueError):
            return True

    return recent


def websocket_notify(service: WebsocketService, event: Any, context: Any = None, *,
                     max_age_s: float = NOTIFY_MAX_AGE_S, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Domain events → the websocket clients subscribed to them, one ``notify`` per batch; gone clients are
    removed. Events older than ``max_age_s`` (a retry after a failed batch) are dropped: a late push could show
    a client an old value over a newer one. A batch answers its partial batch response; a single event
    ``{"posted", "gone", "failed"}``."""
    if is_sqs_batch(event):
        def handle(details: list[Detail]) -> None:
            result = service.notify(details)
            logger.info("websocket notified", extra={"events": result.events, "posted": result.posted,
                                                     "gone": len(result.gone), "failed": result.failed})

        return for_all(event, context, handle, consumer="websocket_notify", keep=sent_within(max_age_s, now))
    result = service.notify([_direct_detail(event)])
    return {"posted": result.posted, "gone": result.gone, "failed": result.failed}
