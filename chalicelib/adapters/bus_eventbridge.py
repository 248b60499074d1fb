"""``EventBus`` on an EventBridge custom bus: events packed into few entries, batched ``PutEvents`` with per-entry
retries.

EventBridge bills per entry (per 64 KB of it) and a rule invokes its target once per entry, so the events of one
``publish`` travel packed (``core/bus_packing.py``): one entry per source holds as many events as ``pack_bytes``
(255 KB: four billed 64 KB chunks, and what a Lambda target or an SQS message still takes) allows. A batch's
hundred field updates are one entry, one billed event at a home's pace, where they were a hundred. Each pack says
whether a live websocket connection wants one of its events (``audience``; without one, every pack is watched),
so the notifier's rule takes only those, and which automation consumers want one of its events (``consumers``:
the enabled tasks' filters and forward payloads' sources; without one, all of them), so the tasks' and forward
payload's rules take only those. With an audience or consumers, an event nobody wants is not put on the bus at all
(``calls["unwanted"]``). ``pack_bytes=0`` puts every event in an entry of its own, unpacked.

At most 10 entries and 256 KB go in one ``PutEvents`` request. ``PutEvents`` can succeed as a call while failing
some entries (``FailedEntryCount``, a per-entry ``ErrorCode``): those entries, and only those, are sent again with
exponential backoff and jitter; what still fails after the last attempt is raised as ``BusPublishError`` (naming
every event of the failed entries), after everything else was delivered. The requests of one attempt go out on up
to ``put_concurrency`` threads. An event too big for an entry keeps its ids only (``entity`` trimmed, detail flag
``truncated: true``): consumers read the rest from the repository rather than the batch failing.

Subscriptions are EventBridge rules declared in ``infra/``, not code: ``subscribe`` refuses.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from chalicelib.core.bus_packing import AUTOMATION_CONSUMERS, Audience, Consumers, Pack, item_json, pack_events
from chalicelib.core.ports import BusEvent

from .errors import AdapterError
from .request_threads import RequestThreads

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL: Final = 10
MAX_REQUEST_BYTES: Final = 256 * 1024
"""PutEvents' limit on the total size of a request's entries, computed as EventBridge does (``entry_size``)."""
PACK_BYTES: Final = 255 * 1024
"""Detail bytes a pack holds at most: four 64 KB chunks billed, and room for the envelope EventBridge adds before a
Lambda target (256 KB payload) or an SQS queue (256 KB message) takes it."""
BILLED_CHUNK_BYTES: Final = 64 * 1024

NON_RETRYABLE_ENTRY_ERRORS: Final = frozenset({
    "InvalidArgument", "MalformedDetail", "ValidationException", "AccessDeniedException",
    "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "EntryTooLarge",
})
"""Per-entry errors that another attempt cannot fix; other codes (InternalFailure, throttling) are retried."""

RETRYABLE_CALL_ERRORS: Final = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "InternalException", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})


_Item = tuple[list[BusEvent], dict[str, Any], int]
"""An entry to send: the events it carries, the PutEvents entry, its size."""


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
                 put_concurrency: int = 8, pack_bytes: int = PACK_BYTES, audience: Audience | None = None,
                 consumers: Consumers | None = None) -> None:
        self.bus_name = bus_name
        self.pack_bytes = max(0, min(pack_bytes, PACK_BYTES))
        self.audience = audience
        """Whether a live websocket connection wants an event (``services.websocket.Audience``); ``None``: every
        pack is watched."""
        self.consumers = consumers
        """Which automation consumers want an event (``functions.interest.ConsumerInterest``); ``None``: all."""
        self._client = client if client is not None else boto3.client("events")
        self._threads = RequestThreads(put_concurrency, "eventbridge-put")
        self.max_attempts = max(1, max_attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._sleep = sleep
        self._calls_lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        """``put_events`` requests, ``entries`` sent (retries included), ``events`` they carried, ``billed``
        64 KB chunks, ``watched`` entries, ``failed_entries`` reported by EventBridge, ``retried_entries``,
        ``truncated`` events, ``unwanted`` events left out (no consumer wanted them)."""

    # ----------------------------------------------------------------------------------------- port

    def publish(self, events: Sequence[BusEvent]) -> None:
        """Put every event on the bus; raises ``BusPublishError`` listing those that failed every attempt."""
        failed: list[FailedEntry] = []
        pending: list[_Item] = []
        self._refresh_consumers()
        for group, prepared in self._entries(events):
            if isinstance(prepared, FailedEntry):
                failed.append(prepared)
            else:
                pending.append((group, *prepared))
        cause: BaseException | None = None
        for attempt in range(self.max_attempts):
            if not pending:
                break
            if attempt:
                self._sleep(self._delay(attempt))
                self._count("retried_entries", len(pending))
            retry: list[_Item] = []
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
                        failed.extend(FailedEntry(event, code, message) for group, _, _ in chunk for event in group)
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
                        failed.extend(FailedEntry(event, code, message) for event in item[0])
                    else:
                        last_error[id(item)] = (code, message)
                        retry.append(item)
            if retry and attempt == self.max_attempts - 1:
                failed.extend(FailedEntry(event, *last_error[id(item)]) for item in retry for event in item[0])
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

    def _entries(self, events: Sequence[BusEvent]) -> list[tuple[list[BusEvent], tuple[dict[str, Any], int] |
                                                                     FailedEntry]]:
        """The entries of these events (packs, or one each with ``pack_bytes=0``), each with its events."""
        if not self.pack_bytes:
            return [([event], self._entry(event)) for event in events]
        result: list[tuple[list[BusEvent], tuple[dict[str, Any], int] | FailedEntry]] = []
        packs = pack_events(events, self.pack_bytes, self._wants if self.audience is not None else None,
                            self._consumers_of if self.consumers is not None else None)
        left_out = len(events) - sum(len(pack.events) for pack in packs)
        if left_out:
            self._count("unwanted", left_out)
        for pack in packs:
            entry = self._make_pack_entry(pack)
            size = entry_size(entry)
            if size <= MAX_REQUEST_BYTES:
                result.append((pack.events, (entry, size)))
                continue
            for event in pack.events:  # an event no pack can hold (alone in its pack): trimmed, or refused
                result.append(([event], self._entry(event, packed=pack.watched, to=pack.to)))
        return result

    def _wants(self, detail: Any) -> bool:
        """The audience's answer; if it cannot tell (its store failing), watched: better a push than none."""
        assert self.audience is not None
        try:
            return bool(self.audience(detail))
        except Exception:
            log.exception("event bus %s: could not tell whether a websocket wants an event; sent to the notifier",
                          self.bus_name)
            return True

    def _refresh_consumers(self) -> None:
        """Once a publish: let the consumers' answer catch up with a change of tasks or forward payloads."""
        refresh = getattr(self.consumers, "refresh", None)
        if refresh is None:
            return
        try:
            refresh()
        except Exception:  # they keep what they read last, read again within their TTL
            log.exception("event bus %s: could not tell whether tasks or forward payloads changed", self.bus_name)

    def _consumers_of(self, event: BusEvent) -> frozenset[str]:
        """The consumers' answer; if they cannot tell (the store failing), all of them: better a needless
        invocation than a task that does not run."""
        assert self.consumers is not None
        try:
            return frozenset(self.consumers(event))
        except Exception:
            log.exception("event bus %s: could not tell which consumers want an event; sent to all of them",
                          self.bus_name)
            return frozenset(AUTOMATION_CONSUMERS)

    def _make_pack_entry(self, pack: Pack) -> dict[str, Any]:
        return {"Source": pack.source, "DetailType": pack.detail_type, "Detail": pack.detail_json(),
                "EventBusName": self.bus_name}

    def _entry(self, event: BusEvent, *, packed: bool | None = None,
               to: set[str] | None = None) -> tuple[dict[str, Any], int] | FailedEntry:
        """The PutEvents entry of one event and its size (in a pack of its own when ``packed`` is given: whether
        it is watched, and ``to`` whom), trimmed if it is too big, or why it cannot be sent."""
        entry = self._single_entry(event.detail, event, packed, to)
        size = entry_size(entry)
        if size <= MAX_REQUEST_BYTES:
            return entry, size
        detail = {**event.detail, "entity": _ids_only(event.detail.get("entity")), "truncated": True}
        entry = self._single_entry(detail, event, packed, to)
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

    def _single_entry(self, detail: dict[str, Any], event: BusEvent, packed: bool | None,
                      to: set[str] | None = None) -> dict[str, Any]:
        if packed is None:
            return self._make_entry(detail, event)
        pack = Pack(event.source, [event], [item_json(BusEvent(event.source, event.detail_type, detail))], 0, packed,
                    set(AUTOMATION_CONSUMERS) if to is None else set(to))
        return self._make_pack_entry(pack)

    @staticmethod
    def _chunks(items: list[_Item]) -> list[list[_Item]]:
        """Consecutive groups of at most 10 entries and 256 KB (order kept)."""
        chunks: list[list[_Item]] = []
        current: list[_Item] = []
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

    def _send(self, chunks: list[list[_Item]]) -> list[dict[str, Any] | Exception]:
        """Each chunk's ``PutEvents`` response, or the exception its request raised, in the chunks' order."""

        def put(chunk: list[_Item]) -> dict[str, Any] | Exception:
            try:
                return self._put(chunk)
            except Exception as error:  # sorted out by publish: retried or failed, with the others sent
                return error

        return self._threads.map(put, chunks)

    def _put(self, chunk: list[_Item]) -> dict[str, Any]:
        self._count("put_events")
        self._count("entries", len(chunk))
        self._count("events", sum(len(group) for group, _, _ in chunk))
        self._count("billed", sum(max(1, math.ceil(size / BILLED_CHUNK_BYTES)) for _, _, size in chunk))
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
