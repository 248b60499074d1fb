"""Ports: the small interfaces the core talks to. Adapters in ``chalicelib/adapters`` implement them.

Nothing here imports boto3 or does I/O. Records are the JSON-shaped dicts described in ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol, get_args, runtime_checkable

from mycontroller_protocol.envelope import Downlink

from .errors import DomainError
from .model import DomainEvent, Kind, Record

# --------------------------------------------------------------------------------------------- lists

FilterOperator = Literal[
    "eq", "ne", "in", "nin", "range_in", "range_not_in", "gt", "lt", "gte", "lte", "exists", "regex"
]
FILTER_OPERATORS: tuple[str, ...] = get_args(FilterOperator)


@dataclass(slots=True, frozen=True)
class Filter:
    """``{k, o, v}`` of the reference's list query: key path, operator, value."""

    key: str
    operator: str = "eq"
    value: Any = None


@dataclass(slots=True, frozen=True)
class Sort:
    """``{f, o}``: field key path and order ``asc`` or ``desc``."""

    field: str
    order: str = "asc"


@dataclass(slots=True)
class ListQuery:
    filters: list[Filter] = field(default_factory=list)
    sort_by: list[Sort] = field(default_factory=list)
    limit: int = 50
    """Page size; 0 or less means no limit."""
    offset: int = 0


@dataclass(slots=True)
class ListResult:
    count: int
    """How many records match the filters, before paging."""
    limit: int
    offset: int
    data: list[Record]

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "limit": self.limit, "offset": self.offset, "data": self.data}


# --------------------------------------------------------------------------------------------- repository


class ConditionFailed(DomainError):
    """A conditional write found other state stored (a newer value, another version); that write was not applied.

    ``ids`` names the records whose version condition failed; ``stale`` those the same ``put_many(if_newer=True)``
    did not write because newer values were stored (what it would have returned). It wrote all the others."""

    def __init__(self, message: str, ids: Sequence[str] = (), stale: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ids: tuple[str, ...] = tuple(ids)
        self.stale: list[str] = list(stale)


Versioned = tuple[Record | None, int]
"""A record as read with its version (``None, 0`` when none is stored)."""


@runtime_checkable
class Repository(Protocol):
    """Where resources live. Device kinds have composite ids (``gw.node.src.field``); other kinds plain ids.

    Records returned are shared and must not be mutated.

    Versions (no lost updates): every stored record has a version, an opaque positive integer that each write of
    it changes (0 means "none stored"). It is kept beside the record, not in it. A read-modify-write reads the
    record with its version (``get_versioned``) and writes with ``expected_version``: if another writer got there
    first the write raises ``ConditionFailed`` and the caller reads again and re-applies its change
    (``core/conflicts.py`` does both). Every write changes the version, conditional or not.
    """

    def get(self, kind: Kind, entity_id: str) -> Record | None: ...

    def get_many(self, kind: Kind, ids: Iterable[str]) -> dict[str, Record]:
        """The records that exist among ``ids``, by id. Missing ids are simply absent."""
        ...

    def get_versioned(self, kind: Kind, entity_id: str) -> Versioned:
        """The record and its version, read together; ``(None, 0)`` when none is stored."""
        ...

    def get_many_versioned(self, kind: Kind, ids: Iterable[str], *, consistent: bool = True
                           ) -> dict[str, tuple[Record, int]]:
        """``get_many`` with each record's version. ``consistent=False`` lets the store answer from a read that may
        miss the writes of the last moment (DynamoDB's eventually consistent read, half the price), for a caller that
        writes on the versions it read: a stale one makes its conditional write fail and read again."""
        ...

    def put(self, kind: Kind, record: Record, *, expected_version: int | None = None) -> None:
        """Create or replace one record; with ``expected_version`` only if the stored version is that one (0: only
        if none is stored), else ``ConditionFailed`` and nothing is written."""
        ...

    def put_many(self, kind: Kind, records: Sequence[Record], *, if_newer: bool = False,
                 expected_versions: Mapping[str, int] | None = None) -> list[str]:
        """Create or replace records, batched where the store can.

        With ``if_newer`` (field values from devices), a record is written only if none is stored or the stored
        one's ``current`` (timestamp, then sequence) is older than the new one's; the ids not written because
        newer state was already stored are returned. This is the order-safety guard under concurrency.

        ``expected_versions`` makes the records whose ids it maps conditional on their stored version (0: none
        stored), as ``put``; such an id may appear once only (``ValueError`` otherwise). The records that pass
        are written, then ``ConditionFailed`` naming the others in ``ids`` (and the stale ones in ``stale``) is
        raised.
        """
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Writes made inside (by this thread) are committed together when it ends, or none of them if it raises.

        A store with transactions (SQLite) holds other writers back meanwhile; the others (memory, DynamoDB) write
        each call as it comes, so callers must not rely on more than "each call is atomic" from them."""
        ...

    def query(self, kind: Kind, query: ListQuery) -> ListResult:
        """Filter, sort and page records of one kind (the API list semantics)."""
        ...

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        """Direct children of a gateway (nodes), node (sources) or source (fields)."""
        ...

    def delete(self, kind: Kind, ids: Sequence[str]) -> list[tuple[Kind, Record]]:
        """Delete records and, for device kinds, everything beneath them (gateway → nodes → sources → fields).

        Returns what was deleted, children included, so callers can announce it.
        """
        ...

    def seen(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these message ids were applied before (idempotence across redeliveries)."""
        ...

    def mark_seen(self, message_ids: Sequence[str]) -> None:
        """Remember message ids as applied; called after their effects are stored."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- metrics


class MetricPoint(NamedTuple):
    """One value for the metric store. ``field_id`` is the composite ``gw.node.src.field``."""

    field_id: str
    gateway_id: str
    node_id: str
    source_id: str
    field_key: str
    metric_type: str
    value: Any
    timestamp_ms: int


@dataclass(slots=True)
class MetricQuery:
    """One field's metrics over ``[start_ms, stop_ms)``; with ``window_ms`` aggregated per window.

    ``functions``: mean, min, max, median, sum, count, first, last, percentile_NN (NN in 1..99).
    Without a window the raw points come back (``{"time", "value"}``).
    """

    field_id: str
    metric_type: str
    start_ms: int
    stop_ms: int
    window_ms: int | None = None
    functions: list[str] = field(default_factory=lambda: ["mean"])


class MetricStore(Protocol):
    def write(self, points: Sequence[MetricPoint]) -> None:
        """Store points. Writing the same (field, timestamp) twice keeps one point (idempotent)."""
        ...

    def query(self, query: MetricQuery) -> list[dict[str, Any]]:
        """Rows ordered by time: ``{"time": iso8601, "value": v}`` raw, or ``{"time", "<function>": v…}``."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- bus


@dataclass(slots=True)
class BusEvent:
    """An EventBridge-shaped event: ``source``, ``detail-type`` and a JSON ``detail``."""

    source: str
    detail_type: str
    detail: dict[str, Any]


EVENT_SOURCE = "mycontroller"


def bus_event(domain_event: DomainEvent) -> BusEvent:
    """Domain events travel with detail-type ``<entityType>.<type>`` (``field.updated``).

    A gateway's secrets (its broker password…) never travel: the bus feeds the websocket and other consumers.
    """
    detail = domain_event.to_dict()
    entity = detail["entity"]
    if domain_event.entity_type == "gateway" and isinstance(entity, dict) and isinstance(entity.get("provider"),
                                                                                             dict):
        from mycontroller_protocol.shadow import redact_secrets

        detail["entity"] = {**entity, "provider": redact_secrets(entity["provider"])}
    return BusEvent(EVENT_SOURCE, f"{domain_event.entity_type}.{domain_event.type}", detail)


class EventBus(Protocol):
    def publish(self, events: Sequence[BusEvent]) -> None:
        """Deliver events at least once; raises only when events could not be handed over after retries."""
        ...

    def subscribe(self, name: str, pattern: dict[str, Any], handler: Callable[[BusEvent], None]) -> None:
        """Run ``handler`` for events matching an EventBridge-style pattern (in-process buses; in AWS
        subscriptions are EventBridge rules declared in ``infra/``)."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- downlink


class DownlinkSender(Protocol):
    def send(self, downlinks: Sequence[Downlink]) -> None:
        """Hand messages to the gateways' edge agents (iot-data publish to the down topic, or in-process)."""
        ...


# --------------------------------------------------------------------------------------------- websocket


class Gone(DomainError):
    """The websocket connection no longer exists (API Gateway's 410); its record should be removed."""


class Notifier(Protocol):
    """Pushes one message to one websocket client (API Gateway ``post_to_connection``; the local server)."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Send; raises ``Gone`` when the connection is gone (or was dropped for falling behind)."""
        ...

    def close(self, connection_id: str, code: int, reason: str) -> None:
        """End the connection (its session ended): locally a close frame with ``code`` and ``reason``; API
        Gateway's ``delete_connection`` cannot say why. A connection already gone is not an error."""
        ...


class ConnectionStore(Protocol):
    """Open websocket connections and their subscriptions (a DynamoDB table in AWS; in memory locally).

    A connection is ``{"connectionId", "principal": {...}, "connectedAt": ms, "expiresAt": s,
    "subscriptions": {subscription id: filter dict}}``."""

    def put(self, connection: dict[str, Any]) -> None: ...

    def get(self, connection_id: str) -> dict[str, Any] | None: ...

    def delete(self, connection_id: str) -> None:
        """Remove; a missing connection is not an error."""
        ...

    def list_all(self) -> list[dict[str, Any]]:
        """Every connection (notify builds its subscription index from them)."""
        ...

    def set_subscription(self, connection_id: str, subscription_id: str, filter_data: dict[str, Any]) -> bool:
        """Add or replace one subscription; False when the connection does not exist (it is not recreated)."""
        ...

    def remove_subscription(self, connection_id: str, subscription_id: str) -> None: ...


# --------------------------------------------------------------------------------------------- schedule registry


class ScheduleRegistry(Protocol):
    """Timed triggers kept in step with schedules and interval tasks (EventBridge Scheduler in AWS; in-process
    locally). ``expression`` is an EventBridge Scheduler expression (``cron(...)``, ``rate(...)``, ``at(...)``)
    read in ``timezone``; ``payload`` is what the target receives when it fires."""

    def put(self, name: str, expression: str, timezone: str, payload: dict[str, Any],
            start: datetime | None, end: datetime | None) -> None:
        """Create or replace the named schedule."""
        ...

    def delete(self, name: str) -> None:
        """Remove the named schedule; a missing one is not an error."""
        ...

    def names(self) -> set[str]: ...


# --------------------------------------------------------------------------------------------- handler queue


class HandlerQueue(Protocol):
    """Where tasks and schedules put handler runs (SQS with a DLQ in AWS; an in-process queue locally).

    Each item is ``HandlerRequest.to_dict()`` (``handlerId``, ``parameters``, ``triggerId``, ``source``); the
    consumer runs it at least once and, keyed by ``triggerId/handlerId``, effectively once."""

    def send(self, requests: Sequence[dict[str, Any]]) -> None:
        """Enqueue; raises only when the requests could not be handed over after retries."""
        ...


class DelayedHandlerQueue(HandlerQueue, Protocol):
    """A handler queue that can hold requests back (SQS ``DelaySeconds``, at most 900 s; a timer locally): the
    resource handler's ``delay``."""

    def send_delayed(self, requests: Sequence[dict[str, Any]], delay_seconds: float) -> None: ...


# --------------------------------------------------------------------------------------------- handler executors


class HandlerCallError(DomainError):
    """A handler call that did not succeed. ``retryable``: the queue should deliver the request again (network,
    5xx, unexpected status); otherwise it can never succeed as configured (bad token, unknown chat, missing field)
    and is recorded in the handler's state without a retry."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class HandlerExecutor(Protocol):
    """Makes one handler call of one type (HTTP, SMTP/SES, telegram, SNS, MQTT, the resource service).

    ``spec`` is the handler's spec with its secrets decrypted; ``params`` the call's validated parameters
    (``handlers.prepare_calls``). Returns a small JSON-shaped summary (never secrets); raises
    ``HandlerCallError``."""

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]: ...


# --------------------------------------------------------------------------------------------- secrets


class SecretError(DomainError):
    """A secret could not be encrypted or decrypted (wrong key, tampered text, key service down)."""


class SecretBox(Protocol):
    """Encrypts secrets at rest (KMS in AWS, AES-256-GCM with a local key file otherwise). ``context`` binds a
    ciphertext to where it belongs (handler id, key path): moved elsewhere it no longer decrypts."""

    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        """Opaque printable ciphertext."""
        ...

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        """The plaintext; ``SecretError`` when it cannot be recovered."""
        ...


class SecretValues(Protocol):
    """Reads secrets kept by a secret store (Secrets Manager in AWS): credentials of services the functions call
    (the InfluxDB token), kept out of environment variables, read once per process."""

    def read(self, name: str) -> str:
        """The secret's current text (a name or an ARN); ``SecretError`` when it is missing or unreadable."""
        ...


# --------------------------------------------------------------------------------------------- device shadow


class ShadowStore(Protocol):
    """Edge devices' shadows (AWS IoT device shadow via iot-data; in-process locally): the desired gateway
    configs the cloud writes, the reported state the edge writes (``mycontroller_protocol.shadow``: the documents)."""

    def update_desired(self, thing: str, desired: dict[str, Any]) -> None:
        """Make the thing's desired section ``desired`` (keys it no longer has are removed)."""
        ...

    def get(self, thing: str) -> dict[str, Any] | None:
        """``{"desired": {...}, "reported": {...}}`` (either may be missing), or ``None`` if there is no shadow."""
        ...


# --------------------------------------------------------------------------------------------- blob store


class BlobNotFound(DomainError, KeyError):
    """No blob is stored under the key."""


@dataclass(slots=True, frozen=True)
class BlobInfo:
    """One stored blob: its key, size in bytes and last modification (epoch milliseconds)."""

    key: str
    size: int
    modified_ms: int


@dataclass(slots=True, frozen=True)
class PresignedUpload:
    """Where a client sends one file itself, bypassing the API (an HTML form ``POST`` to ``url``: every one of
    ``fields``, then the file as ``file_field``, at most ``max_bytes``), until ``expires_s`` seconds have passed."""

    url: str
    fields: dict[str, str]
    max_bytes: int
    expires_s: int
    file_field: str = "file"


class BlobStore(Protocol):
    """Files by key (firmware images, backup archives): S3 in AWS, a local directory otherwise.

    Keys are ``/``-separated relative names (``firmware/<id>``, ``backups/<name>.zip``); the adapters refuse keys
    that could leave their root (``..``, absolute, empty segments). Whole values in memory: sizes are bounded by
    the API (tens of MB).

    A store may hand out short-lived presigned URLs (S3), so that files larger than a Lambda payload (6 MB) go
    between the client and the store directly; a store without URLs of its own (the local directory) answers
    ``None`` and the API carries the bytes itself."""

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store or replace atomically: a reader sees the old value or the new one, never a part."""
        ...

    def get(self, key: str) -> bytes:
        """The value; ``BlobNotFound`` when there is none."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Remove; missing keys are not an error."""
        ...

    def list(self, prefix: str) -> list[BlobInfo]:
        """Blobs whose key starts with ``prefix``, in key order."""
        ...

    def info(self, key: str) -> BlobInfo:
        """Size and modification of one blob without reading it; ``BlobNotFound`` when there is none."""
        ...

    def presign_upload(self, key: str, *, max_bytes: int, expires_s: int) -> PresignedUpload | None:
        """A form that lets a client store one file of 1 to ``max_bytes`` bytes under ``key`` (replacing what is
        there) for ``expires_s`` seconds; ``None`` when this store has no URLs of its own."""
        ...

    def presign_download(self, key: str, *, expires_s: int, filename: str,
                         content_type: str = "application/octet-stream") -> str | None:
        """A URL that answers ``key``'s bytes as a download named ``filename`` for ``expires_s`` seconds (it does
        not check that the blob exists: call ``info`` first); ``None`` when this store has no URLs of its own."""
        ...


_BLOB_KEY_SEGMENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:@~")


def check_blob_key(key: str) -> str:
    """``key`` if it is a safe relative blob key (segments of letters, digits, ``._-:@~``, no ``.``/``..``
    segment), else ``ValueError``: one rule for every adapter, so a key never escapes a directory or prefix."""
    if not isinstance(key, str) or not key or len(key) > 512:
        raise ValueError("blob key must be 1-512 characters")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not set(segment) <= _BLOB_KEY_SEGMENT:
            raise ValueError(f"bad blob key {key!r}")
    return key


# --------------------------------------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A queue message kept aside with why: its ``body`` is what the queue is sent again to replay it."""

    body: str
    reason: str


class DeadLetterSink(Protocol):
    """Where messages that cannot be applied are kept for a person to look at and replay: the ingest queue's DLQ
    in AWS, ``DATA_DIR/ingest-dead-letters.jsonl`` locally. A message failing for good (unreadable, invalid, or
    needing a stored record that cannot be read) is put here at once instead of being retried."""

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Keep every letter, or raise (then the caller retries the messages they came from)."""
        ...
