"""The bus consumers as Lambda runs them: EventBridge events (packs of domain events) → forward payload, tasks,
notify.

The ingest puts a batch's domain events on the bus packed, many events an entry (``core/bus_packing.py``), and each
rule of the bus (``infra/template.py``) invokes its function with the packs it matches, directly: no queue between
(no SQS requests, no pollers), Lambda's asynchronous retries (two) and then the consumer's dead-letter queue when
the function fails. Each consumer takes from a pack the events its own per-event pattern selects (the rule matched
the pack by any of them) and handles them in order; the notifier's rule takes only packs some live websocket wants.

* A pack (or single event) whose work raised fails as a whole: the invocation raises, so Lambda retries it. Trigger
  ids of tasks derive from the events' content, so tasks that already ran an event skip it the second time;
  forward payload sends its downlinks again (a set command twice). A notification older than
  ``NOTIFY_MAX_AGE_S`` (a retry) is dropped rather than pushed late.
* The same functions still take SQS batches of such events (``{"Records": [...]}``, partial batch responses): a
  dead-letter queue's redrive mapping hands them back this way, one record per pack; a record whose body is not an
  event is poison and fails alone.
* Websocket notify calls ``WebsocketService.notify`` once with every event it was given: one read of the
  connections per invocation, one invocation for every connection.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..core.bus_packing import events_of, selector
from ..observability import SERVICE, Logger
from .errors import FunctionError

if TYPE_CHECKING:
    from ..services.websocket import WebsocketService
    from .forward import ForwardPayloadFunction
    from .tasks import TaskFunction

logger = Logger(service=SERVICE, child=True)

NOTIFY_MAX_AGE_S: Final = 60.0
"""Websocket pushes older than this are dropped, not sent late (a retry comes a minute later at the earliest)."""
EVALUATION_FAILED: Final = "evaluation failed"
"""``TaskRun.message`` of an evaluation that raised (store or queue trouble): worth a retry."""

Detail = dict[str, Any]
Wanted = Callable[[str, "str | None", Mapping[str, Any]], bool]
"""A consumer's per-event pattern, applied to the events of a pack (``core.bus_packing.selector``)."""


def _everything(_source: str, _detail_type: str | None, _detail: Mapping[str, Any]) -> bool:
    return True


class BadRecord(FunctionError):
    """A record whose body is not an EventBridge event: poison, retried by SQS and then dead-lettered."""


class RetryRecord(FunctionError):
    """A record whose event was not fully handled: SQS delivers it again."""


def is_sqs_batch(event: Any) -> bool:
    """An event source mapping's batch (``{"Records": [...]}``), as opposed to one EventBridge event."""
    return isinstance(event, Mapping) and isinstance(event.get("Records"), list)


def document_of(record: SQSRecord) -> dict[str, Any]:
    """The EventBridge event a record carries; ``BadRecord`` when it is not one."""
    body = record.raw_event.get("body")
    if not isinstance(body, str):
        raise BadRecord("record without a body")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise BadRecord(f"body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadRecord("body is not a JSON object")
    if not isinstance(document.get("detail"), dict):
        raise BadRecord("body is not an EventBridge event: no 'detail' object")
    return document


def detail_of(record: SQSRecord) -> Detail:
    """The ``detail`` of the EventBridge event a record carries; ``BadRecord`` when it is not one."""
    detail: Detail = document_of(record)["detail"]
    return detail


def details_of(record: SQSRecord, wanted: Wanted = _everything) -> list[Detail]:
    """The events a consumer takes from a record: those of its pack its pattern selects, or the single event."""
    return events_of(document_of(record), wanted)


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
             consumer: str, wanted: Wanted = _everything) -> dict[str, Any]:
    """``handle(detail)`` for each event of each record, in batch order; a record one of whose events raised
    fails alone."""
    if context is not None:
        logger.set_correlation_id(getattr(context, "aws_request_id", None))

    def record_handler(record: SQSRecord) -> None:
        try:
            details = details_of(record, wanted)
        except BadRecord as error:
            raise _bad(consumer, record, error) from None
        for detail in details:
            try:
                handle(detail)
            except Exception as error:  # reported for this record alone; SQS delivers it again
                logger.warning("bus record failed; it will be retried", extra={
                    "consumer": consumer, "sqs_message_id": record.message_id,
                    "entity": detail.get("entityQuickId"), "reason": f"{type(error).__name__}: {str(error)[:300]}"})
                raise

    response = _partial_response(event, context, record_handler)
    logger.info("bus batch handled", extra={"consumer": consumer, "records": len(event["Records"]),
                                            "failed": len(response.get("batchItemFailures") or [])})
    return response


def for_all(event: Mapping[str, Any], context: Any, handle: Callable[[list[Detail]], None], *,
            consumer: str, keep: Callable[[SQSRecord], bool] | None = None,
            wanted: Wanted = _everything) -> dict[str, Any]:
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
            carried = details_of(record, wanted)
        except BadRecord as error:
            bad[str(raw.get("messageId"))] = _bad(consumer, record, error)
            continue
        if keep is not None and not keep(record):
            skipped += 1
            continue
        details.extend(carried)
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


def direct_details(event: Any, wanted: Wanted = _everything) -> list[Detail]:
    """The events a consumer takes from the EventBridge event its rule invoked it with (a pack, or one event);
    anything else: none, which the functions ignore."""
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), dict):
        return []
    return events_of(event, wanted)


def _direct(event: Any, context: Any, consumer: str, wanted: Wanted) -> list[Detail]:
    if context is not None:
        logger.set_correlation_id(getattr(context, "aws_request_id", None))
    details = direct_details(event, wanted)
    logger.info("bus events handled", extra={"consumer": consumer, "events": len(details)})
    return details


# --------------------------------------------------------------------------------------------- the consumers


@functools.cache
def wanted(consumer: str) -> Wanted:
    """A consumer's per-event pattern (imported when first asked: a cold start imports what its function uses)."""
    if consumer == "forward_payload":
        from .forward import FORWARD_PATTERN as pattern
    elif consumer == "tasks":
        from .automation import TASKS_PATTERN as pattern
    else:
        from ..services.websocket import NOTIFY_PATTERN as pattern
    return selector(pattern)


def forward_payload(function: ForwardPayloadFunction, event: Any, context: Any = None) -> dict[str, Any]:
    """``field.updated`` events → downlinks to the mappings' destination fields. A batch answers its partial
    batch response; an EventBridge event ``{"sent", "failed"}`` (a downlink that could not go raises: retried)."""
    if is_sqs_batch(event):
        def handle(detail: Detail) -> None:
            function.handle(detail)  # downlink failures raise (retry); unsendable mappings are logged

        return for_each(event, context, handle, consumer="forward_payload", wanted=wanted("forward_payload"))
    sent = 0
    failures: list[str] = []
    for detail in _direct(event, context, "forward_payload", wanted("forward_payload")):
        plan = function.handle(detail)
        sent += len(plan.downlinks)
        failures += [f.mapping_id for f in plan.failures]
    return {"sent": sent, "failed": failures}


def tasks(function: TaskFunction, event: Any, context: Any = None) -> dict[str, Any]:
    """Domain events → the tasks they match, evaluated in order. A batch answers its partial batch response (a
    record whose evaluation failed is retried); an EventBridge event ``{"evaluated": [task ids]}``, or raises when
    an evaluation failed (Lambda retries the invocation)."""
    if is_sqs_batch(event):
        def handle(detail: Detail) -> None:
            failed = [run.id for run in function.handle(detail) if run.message == EVALUATION_FAILED]
            if failed:
                raise RetryRecord(f"evaluation failed for task(s) {', '.join(failed[:5])}")

        return for_each(event, context, handle, consumer="tasks", wanted=wanted("tasks"))
    evaluated: list[str] = []
    failed: list[str] = []
    for detail in _direct(event, context, "tasks", wanted("tasks")):
        runs = function.handle(detail)
        evaluated += [run.id for run in runs if run.outcome is not None and run.outcome.evaluated]
        failed += [run.id for run in runs if run.message == EVALUATION_FAILED]
    if failed:
        raise RetryRecord(f"evaluation failed for task(s) {', '.join(failed[:5])}")
    return {"evaluated": evaluated}


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


def put_within(event: Mapping[str, Any], max_age_s: float, now: Callable[[], float] = time.time) -> bool:
    """Whether an EventBridge event was put on the bus at most ``max_age_s`` ago (its ``time``; without one:
    yes)."""
    put = event.get("time")
    if not isinstance(put, str):
        return True
    try:
        stamp = datetime.fromisoformat(put.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return now() - stamp <= max_age_s


def websocket_notify(service: WebsocketService, event: Any, context: Any = None, *,
                     max_age_s: float = NOTIFY_MAX_AGE_S, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Domain events → the websocket clients subscribed to them, one ``notify`` per invocation; gone clients are
    removed. Events older than ``max_age_s`` (a retry) are dropped: a late push could show a client an old value
    over a newer one. A batch answers its partial batch response; an EventBridge event
    ``{"posted", "gone", "failed"}`` (a notify that raised is retried by Lambda)."""
    if is_sqs_batch(event):
        def handle(details: list[Detail]) -> None:
            result = service.notify(details)
            logger.info("websocket notified", extra={"events": result.events, "posted": result.posted,
                                                     "gone": len(result.gone), "failed": result.failed})

        return for_all(event, context, handle, consumer="websocket_notify", keep=sent_within(max_age_s, now),
                       wanted=wanted("websocket_notify"))
    if context is not None:
        logger.set_correlation_id(getattr(context, "aws_request_id", None))
    if isinstance(event, Mapping) and not put_within(event, max_age_s, now):
        logger.info("websocket events too old to push; dropped", extra={"time": event.get("time")})
        return {"posted": 0, "gone": [], "failed": 0}
    details = direct_details(event, wanted("websocket_notify"))
    result = service.notify(details or [{}])
    logger.info("websocket notified", extra={"events": len(details), "posted": result.posted,
                                             "gone": len(result.gone), "failed": result.failed})
    return {"posted": result.posted, "gone": result.gone, "failed": result.failed}
