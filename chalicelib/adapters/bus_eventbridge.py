"""``EventBus`` on an EventBridge custom bus: batched ``PutEvents`` with per-entry retries.

EventBridge bills per entry and takes at most 10 entries and 256 KB per ``PutEvents`` request, so events go in
as few requests as those limits allow. ``PutEvents`` can succeed as a call while failing some entries
(``FailedEntryCount``, a per-entry ``ErrorCode``): those entries, and only those, are sent again with
exponential backoff and jitter; what still fails after the last attempt is raised as ``BusPublishError``, after
everything else was delivered. The requests of one attempt go out on up to ``put_concurrency`` threads: a batch
of a hundred publishes brings hundreds of events, and one request after another would hold the ingest function
(and the dashboard's updates) for seconds. An event too big for one entry keeps its ids only (``entity``
trimmed, detail flag ``truncated: true``): consumers read the rest from the repository rather than the batch
failing.

Subscriptions are EventBridge rules declared in ``infra/``, not code: ``subscribe`` refuses.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from chalicelib.core.ports import BusEvent

from .errors import AdapterError
from .request_threads import RequestThreads

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL: Final = 10
MAX_REQUEST_BYTES: Final = 256 * 1024
"""PutEvents' limit on the total size of a request's entries, computed as EventBridge does (``entry_size``)."""

NON_RETRYABLE_ENTRY_ERRORS: Final = frozenset({
    "InvalidArgument", "MalformedDetail", "ValidationException", "AccessDeniedException",
    "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "EntryTooLarge",
})
"""Per-entry errors that another attempt cannot fix; other codes (InternalFailure, throttling) are retried."""

RETRYABLE_CALL_ERRORS: Final = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "InternalException", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})


@dataclass(slots=True, frozen=True)
class FailedEntry:
    event: BusEvent
    code: str
    message: str


class BusPublishError(AdapterError):
    """Some events could not be put on the bus after every attempt; ``failed`` says which and why."""

    def __init__(self, failed: list[FailedEntry]) -> None:
        self.failed = failed
        shown = "; ".join(" ".join(filter(None, (f.event.detail_type, _entity_id(f.event)))) + f": {f.code}"
                          + (f" ({f.message})" if f.message else "") for f in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} event(s) not put on the bus: {shown}{more}")


def _entity_id(event: BusEvent) -> str:
    return str(event.detail.get("entityQuickId") or event.detail.get("entityId") or "")


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes an entry counts for against the 256 KB limit, per EventBridge's documented calculation."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if value:
            size += len(value.encode("utf-8"))
    for resource in entry.get("Resources") or ():
        size += len(resource.encode("utf-8"))
    return size


def _ids_only(entity: Any) -> Any:
    """What remains of a too-large entity: its id and the ``…Id`` keys that say where it belongs."""
    if not isinstance(entity, dict):
        return None
    return {key: value for key, value in entity.items() if key == "id" or (key.endswith("Id") and
                                                                             isinstance(value, str | int))}


class EventBridgeBus:
    """``EventBus`` adapter for one EventBridge bus. ``calls`` counts requests and entries (cost model)."""

    def __init__(self, bus_name: str, client: Any = None, *, max_attempts: int = 5, base_delay_s: float = 0.05,
                 max_delay_s: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                 put_concurrency: int = 8) -> None:
        self.bus_name = bus_name
        self._client = client if client is not None else boto3.client("events")
        self._threads = RequestThreads(put_concurrency, "eventbridge-put")
        self.max_attempts = max(1, max_attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep
        self._calls_lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        """``put_events`` requests, ``entries`` sent (retries included), ``failed_entries`` reported by
        EventBridge, ``retried_entries``, ``truncated`` events."""

    # ----------------------------------------------------------------------------------------- port

    def publish(self, events: Sequence[BusEvent]) -> None:
        """Put every event on the bus; raises ``BusPublishError`` listing those that failed every attempt."""
        failed: list[FailedEntry] = []
        pending: list[tuple[BusEvent, dict[str, Any], int]] = []
        for event in events:
            prepared = self._entry(event)
            if isinstance(prepared, FailedEntry):
                failed.append(prepared)
            else:
                pending.append((event, *prepared))
        cause: BaseException | None = None
        for attempt in range(self.max_attempts):
            if not pending:
                break
            if attempt:
                self._sleep(self._delay(attempt))
                self._count("retried_entries", len(pending))
            retry: list[tuple[BusEvent, dict[str, Any], int]] = []
            last_error: dict[int, tuple[str, str]] = {}
            chunks = self._chunks(pending)
            for chunk, outcome in zip(chunks, self._send(chunks), strict=True):
                if isinstance(outcome, Exception):
                    error = outcome
                    code, message, cause = _error_code(error), str(error), error
                    if _retryable(error):
                        for item in chunk:
                            last_error[id(item)] = (code, message)
                        retry.extend(chunk)
                    else:
                        failed.extend(FailedEntry(event, code, message) for event, _, _ in chunk)
                    continue
                results = outcome.get("Entries") or []
                for index, item in enumerate(chunk):
                    result = results[index] if index < len(results) else {"ErrorCode": "MissingResult",
                                                                          "ErrorMessage": "no result for entry"}
                    if not result.get("ErrorCode"):
                        continue
                    code = str(result["ErrorCode"])
                    self._count("failed_entries")
                    message = str(result.get("ErrorMessage") or "")
                    if code in NON_RETRYABLE_ENTRY_ERRORS:
                        failed.append(FailedEntry(item[0], code, message))
                    else:
                        last_error[id(item)] = (code, message)
                        retry.append(item)
            if retry and attempt == self.max_attempts - 1:
                failed.extend(FailedEntry(item[0], *last_error[id(item)]) for item in retry)
                retry = []
            pending = retry
        if failed:
            log.error("event bus %s: %d event(s) not published: %s", self.bus_name, len(failed),
                      [(f.event.detail_type, _entity_id(f.event), f.code) for f in failed[:20]])
            raise BusPublishError(failed) from cause

    def subscribe(self, name: str, pattern: dict[str, Any], handler: Callable[[BusEvent], None]) -> None:
        raise NotImplementedError(
            f"subscription {name!r}: in AWS, subscriptions are EventBridge rules on bus {self.bus_name!r} "
            "declared in infra/ (rule + target), not code; use LocalEventBus for in-process handlers")

    def close(self) -> None:
        """Stop the request threads (the client may be shared: it stays open). Idempotent."""
        self._threads.close()

    # ----------------------------------------------------------------------------------------- internals

    def _count(self, name: str, amount: int = 1) -> None:
        with self._calls_lock:
            self.calls[name] += amount

    def _entry(self, event: BusEvent) -> tuple[dict[str, Any], int] | FailedEntry:
        """The PutEvents entry and its size, trimmed if it is too big, or why it cannot be sent."""
        entry = self._make_entry(event.detail, event)
        size = entry_size(entry)
        if size <= MAX_REQUEST_BYTES:
            return entry, size
        detail = {**event.detail, "entity": _ids_only(event.detail.get("entity")), "truncated": True}
        entry = self._make_entry(detail, event)
        trimmed = entry_size(entry)
        if trimmed <= MAX_REQUEST_BYTES:
            self._count("truncated")
            log.warning("event bus %s: %s %s is %d bytes, over the %d limit; entity trimmed to its ids",
                        self.bus_name, event.detail_type, _entity_id(event), size, MAX_REQUEST_BYTES)
            return entry, trimmed
        return FailedEntry(event, "EntryTooLarge",
                           f"{trimmed} bytes even with the entity trimmed (limit {MAX_REQUEST_BYTES})")

    def _make_entry(self, detail: dict[str, Any], event: BusEvent) -> dict[str, Any]:
        return {
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), default=str),
            "EventBusName": self.bus_name,
        }

    @staticmethod
    def _chunks(items: list[tuple[BusEvent, dict[str, Any], int]]
                ) -> list[list[tuple[BusEvent, dict[str, Any], int]]]:
        """Consecutive groups of at most 10 entries and 256 KB (order kept)."""
        chunks: list[list[tuple[BusEvent, dict[str, Any], int]]] = []
        current: list[tuple[BusEvent, dict[str, Any], int]] = []
        current_bytes = 0
        for item in items:
            size = item[2]
            if current and (len(current) == MAX_ENTRIES_PER_CALL or current_bytes + size > MAX_REQUEST_BYTES):
                chunks.append(current)
                current, current_bytes = [], 0
            current.append(item)
            current_bytes += size
        if current:
            chunks.append(current)
        return chunks

    def _send(self, chunks: list[list[tuple[BusEvent, dict[str, Any], int]]]) -> list[dict[str, Any] | Exception]:
        """Each chunk's ``PutEvents`` response, or the exception its request raised, in the chunks' order."""

        def put(chunk: list[tuple[BusEvent, dict[str, Any], int]]) -> dict[str, Any] | Exception:
            try:
                return self._put(chunk)
            except Exception as error:  # sorted out by publish: retried or failed, with the others sent
                return error

        return self._threads.map(put, chunks)

    def _put(self, chunk: list[tuple[BusEvent, dict[str, Any], int]]) -> dict[str, Any]:
        self._count("put_events")
        self._count("entries", len(chunk))
        response: dict[str, Any] = self._client.put_events(Entries=[entry for _, entry, _ in chunk])
        return response

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``, capped."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__


def _retryable(error: BaseException) -> bool:
    """Throttling, server errors and connection problems are worth another attempt; bad requests are not."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return _error_code(error) in RETRYABLE_CALL_ERRORS or int(status) >= 500
    if isinstance(error, ParamValidationError):
        return False
    return isinstance(error, BotoCoreError)
