"""The handler function: runs the handler requests tasks and schedules queue, each effectively once.

In AWS the handler queue (SQS, DLQ after ``maxReceiveCount``) feeds the ``handlers`` Lambda ten requests at a time;
locally ``adapters/handler_queue_local.py`` feeds the same ``HandlerFunction.handle`` with SQS-shaped events. Per
request (``HandlerRequest.to_dict()``):

1. Load the handler; a missing or disabled one is skipped with a logged reason (not retried).
2. Decrypt its secrets (``handler_secrets``), turn the rendered parameters into calls (``prepare_calls``): bad
   parameters fail at once, recorded in the handler's state, without a retry (they cannot succeed).
3. Make each call through the executor of the handler's type (``adapters/handler_*.py``). A resource call with a
   ``delay`` is re-queued as its own request (SQS ``DelaySeconds``, re-queued in 900 s steps; a timer locally).
4. Record ``state``: ``status``/``message``/``since`` plus ``lastRun``, ``lastStatus``, ``executedCount`` (runs)
   and ``errorCount`` (runs with an error), like the reference's schedule state. A state write that fails is
   logged, not retried: the calls have been made.

Idempotency (Powertools ``idempotent_function``; DynamoDB in the resource table when ``STORAGE=dynamodb``, SQLite
in the data directory otherwise; ``bootstrap`` builds either): a request is claimed under ``triggerId/handlerId``,
so a redelivered trigger runs a handler once (a completed key answers with the stored result for
``IDEMPOTENCY_TTL_S``). Handlers with more than one call also claim each call
(``triggerId/handlerId/<parameter>``): when one call fails with a retryable error the request is retried and only
the calls that did not complete run again. Retryable failures (network, 5xx, an unexpected webhook status) make the
SQS record fail, so the queue retries it and finally dead-letters it; a request that is not JSON or has no ids
fails the same way (poison, kept in the DLQ for inspection).

Secrets are decrypted only here, only in memory, and scrubbed from every message that is logged or stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord
from pydantic import ValidationError

from ..core.automation.handler_secrets import decrypt_spec, scrub
from ..core.automation.handlers import HandlerCall, HandlerParameterError, prepare_calls
from ..core.automation.models import Handler
from ..core.automation.tasks import HandlerRequest
from ..core.conflicts import update
from ..core.model import Kind, Record, now_iso
from ..core.ports import (
    DelayedHandlerQueue,
    HandlerCallError,
    HandlerExecutor,
    Repository,
    SecretBox,
    SecretError,
)
from ..observability import SERVICE, Logger
from .errors import FunctionError

logger = Logger(service=SERVICE, child=True)

IDEMPOTENCY_TTL_S: Final = 3 * 24 * 3600
"""How long a completed run is remembered (longer than SQS keeps a message by default)."""
KEY_PREFIX: Final = "mycontroller.handler"
MAX_QUEUE_DELAY_S: Final = 900
LOCAL_RUN_TIMEOUT_S: Final = 60.0
"""Locally (no Lambda context): a run still in progress after this long is taken to have died."""
MAX_MESSAGE_CHARS: Final = 500


class BadRequest(FunctionError):
    """A queued item that is not a handler request (poison): fails its record, ends in the DLQ."""


class RetryLater(FunctionError):
    """A run with retryable failures: the record fails so the queue delivers it again."""


@dataclass(slots=True)
class HandlerOutcome:
    status: str
    """``ok``, ``error`` (recorded, not retried), ``skipped``, ``delayed``."""
    handler_id: str = ""
    trigger_id: str = ""
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    duplicate: bool = False
    """The trigger had run this handler already: nothing was done again."""


class NoopExecutor:
    """``noop`` handlers: do nothing, successfully (tests, dry runs)."""

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"parameters": len(params.get("parameters") or {})}


class _LocalContext:
    """What Powertools reads from a Lambda context to expire a run that died while in progress."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_s * 1000)


def _mark_replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, "duplicate": True} if isinstance(response, dict) else response


class HandlerFunction:
    def __init__(self, repository: Repository, executors: Mapping[str, HandlerExecutor],
                 persistence: BasePersistenceLayer, *, secrets: SecretBox | None = None,
                 queue: DelayedHandlerQueue | None = None, clock: Any = time.time,
                 local_timeout_s: float = LOCAL_RUN_TIMEOUT_S) -> None:
        self.repository = repository
        self.executors = dict(executors)
        self.persistence = persistence
        self.secrets = secrets
        self.queue = queue
        self.clock = clock
        self.local_timeout_s = local_timeout_s
        self.config = IdempotencyConfig(event_key_jmespath="key", expires_after_seconds=IDEMPOTENCY_TTL_S,
                                        raise_on_no_idempotency_key=True, response_hook=_mark_replayed)
        self._run_once = idempotent_function(self._run, data_keyword_argument="job", persistence_store=persistence,
                                             config=self.config, key_prefix=KEY_PREFIX)
        self._call_once = idempotent_function(self._call, data_keyword_argument="job",
                                              persistence_store=persistence, config=self.config,
                                              key_prefix=KEY_PREFIX)
        self._lock = threading.Lock()
        """One run at a time per function object: the idempotency config holds the invocation's context."""

    # ----------------------------------------------------------------------------------------- entry points

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda entry point's body: an SQS batch in, the partial batch response out."""

        def record_handler(record: SQSRecord) -> None:
            try:
                body = json.loads(record.body)
            except ValueError as error:
                logger.warning("poison handler request", extra={"sqs_message_id": record.message_id,
                                                                "reason": f"not JSON: {error}"})
                raise BadRequest(f"not JSON: {error}") from None
            self.run(body, context)

        batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event=event, record_handler=record_handler, processor=batch,
                                             context=context))

    def run(self, raw: Mapping[str, Any], context: Any = None) -> HandlerOutcome:
        """Run one request; raises ``BadRequest`` (poison) or ``RetryLater``/persistence errors (retry)."""
        try:
            if not isinstance(raw, Mapping):
                raise TypeError("not an object")
            request = HandlerRequest.from_dict(raw)
            if not request.handler_id or not request.trigger_id:
                raise ValueError("handlerId and triggerId must not be empty")
            not_before = float(raw.get("notBefore") or 0)
        except (KeyError, TypeError, ValueError) as error:
            logger.warning("poison handler request", extra={"reason": f"{type(error).__name__}: {error}"})
            raise BadRequest(f"not a handler request: {type(error).__name__}: {error}") from None
        wait = not_before - self.clock()
        if wait > 0.5:
            self._enqueue_later(dict(raw), wait)
            return HandlerOutcome("delayed", request.handler_id, request.trigger_id)
        with self._lock:
            self.config.register_lambda_context(context or _LocalContext(self.local_timeout_s))  # type: ignore[arg-type]
            try:
                result = self._run_once(job={"key": request.idempotency_key}, request=request)
            except IdempotencyAlreadyInProgressError:
                logger.info("handler run already in progress elsewhere; retry later",
                            extra={"handler": request.handler_id, "trigger": request.trigger_id})
                raise
        outcome = HandlerOutcome(str(result.get("status")), request.handler_id, request.trigger_id,
                                 int(result.get("calls") or 0), list(result.get("errors") or []),
                                 bool(result.get("duplicate")))
        if outcome.duplicate:
            logger.info("handler already ran for this trigger; not run again",
                        extra={"handler": request.handler_id, "trigger": request.trigger_id})
        return outcome

    # ----------------------------------------------------------------------------------------- one run

    def _run(self, job: dict[str, str], request: HandlerRequest) -> dict[str, Any]:
        ids = {"handler": request.handler_id, "trigger": request.trigger_id, "source": request.source}
        record = self.repository.get(Kind.HANDLER, request.handler_id)
        if record is None or not record.get("enabled", True):
            reason = "handler does not exist" if record is None else "handler is disabled"
            logger.info("handler request skipped", extra={**ids, "reason": reason})
            return {"status": "skipped", "reason": reason}
        clear: list[str] = []
        try:
            handler = Handler.model_validate(record)
            spec, clear = decrypt_spec(handler.id, handler.type, handler.spec, self.secrets)
            calls = prepare_calls({**record, "spec": spec}, request.parameters)
        except (HandlerParameterError, ValidationError) as error:
            message = scrub(str(error), clear)[:MAX_MESSAGE_CHARS]
            logger.warning("handler request cannot run", extra={**ids, "reason": message})
            self._record_state(request.handler_id, "error", message)
            return {"status": "error", "calls": 0, "errors": [message]}
        except SecretError as error:
            message = f"secrets: {error}"[:MAX_MESSAGE_CHARS]
            logger.warning("handler secrets unavailable; will retry", extra={**ids, "reason": message})
            self._record_state(request.handler_id, "error", message + " (will retry)")
            raise RetryLater(message) from None

        retry: list[str] = []
        failed: list[str] = []
        delayed = 0
        many = len(calls) > 1
        for call in calls:
            if call.params.get("delaySeconds"):
                self._delay(request, call)
                delayed += 1
                continue
            try:
                if many:
                    self._call_once(job={"key": f"{request.idempotency_key}/{call.name}"}, call=call, spec=spec)
                else:
                    self._call(job={}, call=call, spec=spec)
            except HandlerCallError as error:
                (retry if error.retryable else failed).append(scrub(f"{call.name}: {error}", clear))
            except IdempotencyAlreadyInProgressError:
                retry.append(f"{call.name}: in progress elsewhere")
            except Exception as error:  # an executor's bug or an unexpected library error: retry, then DLQ
                retry.append(scrub(f"{call.name}: {type(error).__name__}: {error}", clear))
        errors = failed + retry
        message = "; ".join(errors)[:MAX_MESSAGE_CHARS] if errors else (
            f"{len(calls) - delayed} call{'' if len(calls) - delayed == 1 else 's'} made"
            + (f", {delayed} delayed" if delayed else ""))
        status = "error" if errors else "ok"
        self._record_state(request.handler_id, status, message + (" (will retry)" if retry else ""))
        log = logger.warning if errors else logger.info
        log("handler ran", extra={**ids, "status": status, "calls": len(calls), "outcome": message})
        if retry:
            raise RetryLater(message)
        return {"status": status, "calls": len(calls), "errors": errors}

    def _call(self, job: dict[str, str], call: HandlerCall, spec: dict[str, Any]) -> dict[str, Any]:
        executor = self.executors.get(call.handler_type)
        if executor is None:
            raise HandlerCallError(f"no executor for {call.handler_type} handlers is configured", retryable=False)
        return executor.execute(spec, call.params)

    def _delay(self, request: HandlerRequest, call: HandlerCall) -> None:
        """Queue the delayed call as its own request (its own trigger id: the delayed run is idempotent too)."""
        delay = float(call.params["delaySeconds"])
        parameter = request.parameters.get(call.name)
        undelayed = {k: v for k, v in parameter.items() if k not in ("delay", "preDelay")} \
            if isinstance(parameter, Mapping) else parameter
        delayed = {"handlerId": request.handler_id, "parameters": {call.name: undelayed},
                   "triggerId": f"{request.trigger_id}/delay/{call.name}", "source": request.source,
                   "notBefore": self.clock() + delay}
        self._enqueue_later(delayed, delay)

    def _enqueue_later(self, request: dict[str, Any], delay_s: float) -> None:
        if self.queue is None:
            raise HandlerCallError("a delayed call needs the handler queue, and none is configured",
                                   retryable=False)
        self.queue.send_delayed([request], min(float(MAX_QUEUE_DELAY_S), max(0.0, delay_s)))

    def _record_state(self, handler_id: str, status: str, message: str) -> None:
        """Best effort: the record is read again right before the write, and written on the version read
        (again on a newer one), so neither an API edit nor another run's count is lost."""

        def counted(record: Record | None) -> Record | None:
            if record is None:
                return None
            state = dict(record.get("state") or {})
            now = now_iso()
            if state.get("status") != status:
                state["since"] = now
            state.update(status=status, message=message, lastRun=now, lastStatus=status,
                         executedCount=int(state.get("executedCount") or 0) + 1,
                         errorCount=int(state.get("errorCount") or 0) + (status == "error"))
            return {**record, "state": state}

        try:
            update(self.repository, Kind.HANDLER, handler_id, counted)
        except Exception:  # bookkeeping must not make a done call run again
            logger.exception("handler state not recorded", extra={"handler": handler_id})


# --------------------------------------------------------------------------------------------- executors


class EmailExecutor:
    """SMTP for handlers with a ``host``; SES (when configured) for the others."""

    def __init__(self, smtp: HandlerExecutor, ses: HandlerExecutor | None) -> None:
        self.smtp = smtp
        self.ses = ses

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if spec.get("host") or self.ses is None:
            return self.smtp.execute(spec, params)
        return self.ses.execute(spec, params)


class Unavailable:
    """A handler type this deployment cannot serve: its calls fail at once, not retried."""

    def __init__(self, message: str) -> None:
        self.message = message

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        raise HandlerCallError(self.message, retryable=False)
