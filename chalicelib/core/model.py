"""The resource model: gateway → node → source → field, after MyController v2.

Two representations, on purpose:

* Pydantic models (``Gateway``, ``Node``, ``Source``, ``Field`` …) define the schema, validate what users
  send through the API and build new records. Their JSON uses the reference's camelCase names.
* Records: the same data as plain JSON-shaped dicts (``model.model_dump()``), which is what repositories
  store and return and what the ingest hot path updates. Building a pydantic object per device message costs
  microseconds we do not have at 100,000 messages a second; a dict copy costs a fraction of that.

Records handed out by a repository are shared: never mutate one, build a new dict (``{**old, ...}``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic import Field as PydField
from pydantic.alias_generators import to_camel

from mycontroller_protocol.ids import ID_PATTERN
from mycontroller_protocol.values import INT64_MAX, TRUE_WORDS, ConversionError

from .errors import DomainError

Record = dict[str, Any]


class Kind(StrEnum):
    """Kinds of resources; the value is the quick-id prefix and the API path segment."""

    GATEWAY = "gateway"
    NODE = "node"
    SOURCE = "source"
    FIELD = "field"
    TASK = "task"
    SCHEDULE = "schedule"
    HANDLER = "handler"
    FIRMWARE = "firmware"
    DATA_REPOSITORY = "data_repository"
    VIRTUAL_DEVICE = "virtual_device"
    """A device made of other resources' values (MyController v2's, for voice assistants): ``core/virtual.py``."""
    VIRTUAL_ASSISTANT = "virtual_assistant"
    """A voice assistant's configuration (Alexa, Google); the integrations themselves are a later step."""
    FORWARD_PAYLOAD = "forward_payload"
    DASHBOARD = "dashboard"
    USER = "user"
    SERVICE_TOKEN = "service_token"
    REVOKED_TOKEN = "revoked_token"
    SETTINGS = "settings"
    LOGIN_ATTEMPT = "login_attempt"
    """Recent failed logins per user and per client address (``services/login_guard.py``); never backed up."""


DEVICE_KINDS: Final = (Kind.GATEWAY, Kind.NODE, Kind.SOURCE, Kind.FIELD)
ID_DEPTH: Final = {Kind.GATEWAY: 1, Kind.NODE: 2, Kind.SOURCE: 3, Kind.FIELD: 4}
"""How many dotted segments a device resource's id has (``gw``, ``gw.node``, ``gw.node.src``, ...)."""
PARENT_KIND: Final = {Kind.NODE: Kind.GATEWAY, Kind.SOURCE: Kind.NODE, Kind.FIELD: Kind.SOURCE}
CHILD_KIND: Final = {Kind.GATEWAY: Kind.NODE, Kind.NODE: Kind.SOURCE, Kind.SOURCE: Kind.FIELD}
PRIVATE_KINDS: Final = frozenset({Kind.USER, Kind.SERVICE_TOKEN, Kind.REVOKED_TOKEN, Kind.LOGIN_ATTEMPT})
"""Kinds holding credentials: no quick id reaches them (``/api/quickid?id=user:admin.password`` would leak)."""


class MetricType(StrEnum):
    NONE = "none"
    STRING = "string"
    COUNTER = "counter"
    GAUGE = "gauge"
    GAUGE_FLOAT = "gauge_float"
    BINARY = "binary"
    GEO = "geo"


class StateStatus(StrEnum):
    OK = "ok"
    UP = "up"
    DOWN = "down"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


class EventType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    REQUESTED = "requested"


# --------------------------------------------------------------------------------------------- time


_ISO_SECONDS: dict[int, str] = {}
_EPOCH_SECONDS: dict[str, int] = {}
_CACHE_LIMIT = 200_000


def iso_from_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, fixed width, so that string order is time order.

    Cached per second: the ingest path formats a timestamp per changed field, and strftime is slow.
    """
    secs, millis = divmod(int(ms), 1000)
    prefix = _ISO_SECONDS.get(secs)
    if prefix is None:
        if len(_ISO_SECONDS) >= _CACHE_LIMIT:
            _ISO_SECONDS.clear()
            _EPOCH_SECONDS.clear()
        prefix = _ISO_SECONDS[secs] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
        _EPOCH_SECONDS[prefix] = secs
    return f"{prefix}.{millis:03d}Z"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def now_iso() -> str:
    return iso_from_ms(now_ms())


def ms_from_iso(value: str) -> int:
    """Parse an RFC 3339 timestamp (any offset) into epoch milliseconds; our own fixed form is a cache hit."""
    if len(value) == 24 and value[19] == "." and value[23] == "Z":
        secs = _EPOCH_SECONDS.get(value[:19])
        if secs is not None:
            millis = value[20:23]
            if millis.isdigit():
                return secs * 1000 + int(millis)
    from datetime import UTC, datetime

    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    result = int(parsed.timestamp() * 1000)
    iso_from_ms(result)  # warm the cache for this second
    return result


# --------------------------------------------------------------------------------------------- values

ValueError_ = ConversionError
"""The old name, kept until ``core/processor`` imports ``ConversionError`` (then removed)."""


def metric_number(value: Any, metric_type: str) -> float | None:
    """The number a converted value contributes to metrics (None when it is not numeric)."""
    if metric_type == "binary":
        return 1.0 if value else 0.0
    if metric_type in ("gauge", "gauge_float", "counter"):
        return float(value)
    return None


# --------------------------------------------------------------------------------------------- labels


def label(labels: dict[str, str] | None, key: str) -> str | None:
    """Case-insensitive label lookup, as the reference's maps are."""
    if not labels:
        return None
    if key in labels:
        return labels[key]
    lowered = key.lower()
    for k, v in labels.items():
        if k.lower() == lowered:
            return v
    return None


def label_true(labels: dict[str, str] | None, key: str) -> bool:
    value = label(labels, key)
    return value is not None and value.strip().lower() in TRUE_WORDS


def ignored(labels: dict[str, str] | None, key: str) -> bool:
    """``ignore_<key>=true`` stops the system from overwriting ``key`` (``ignore_name``, ``ignore_unit``…)."""
    return label_true(labels, "ignore_" + key)


# --------------------------------------------------------------------------------------------- quick ids


class QuickIdError(DomainError, ValueError):
    """A quick id (``field:gw.1.1.V_TEMP``) that cannot be read; the message says which part is wrong."""


class QuickId(BaseModel):
    """``field:gw.node.source.field`` and friends; segments past the id form a key path."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    segments: tuple[str, ...]
    key_path: str = ""

    @property
    def id(self) -> str:
        return ".".join(self.segments)

    def __str__(self) -> str:
        text = f"{self.kind.value}:{self.id}"
        return f"{text}.{self.key_path}" if self.key_path else text


QUICK_ID_ALIASES: Final = {
    "gw": Kind.GATEWAY,
    "nd": Kind.NODE,
    "src": Kind.SOURCE,
    "sf": Kind.FIELD,
    "forwardpayload": Kind.FORWARD_PAYLOAD,
    "datarepository": Kind.DATA_REPOSITORY,
    "virtualdevice": Kind.VIRTUAL_DEVICE,
    "virtualassistant": Kind.VIRTUAL_ASSISTANT,
}


def parse_quick_id(text: str) -> QuickId:
    """Parse a quick id; raises ``QuickIdError`` saying what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise QuickIdError(f"quick id must look like '<kind>:<id>', got {text!r}")
    prefix, _, rest = text.partition(":")
    prefix = prefix.strip().lower()
    try:
        kind = QUICK_ID_ALIASES.get(prefix) or Kind(prefix)
    except ValueError:
        raise QuickIdError(f"unknown quick id kind {prefix!r}") from None
    if kind in PRIVATE_KINDS:
        raise QuickIdError(f"unknown quick id kind {prefix!r}")
    parts = rest.split(".")
    depth = ID_DEPTH.get(kind, 1)
    if len(parts) < depth or any(not p for p in parts[:depth]):
        raise QuickIdError(f"quick id {text!r} needs {depth} non-empty dotted segment(s) for {kind.value}")
    return QuickId(kind=kind, segments=tuple(parts[:depth]), key_path=".".join(parts[depth:]))


def quick_id(kind: Kind | str, entity_id: str) -> str:
    return f"{Kind(kind).value}:{entity_id}"


def composite_id(*segments: str) -> str:
    return ".".join(segments)


def kind_of_id(kind: Kind, entity_id: str) -> tuple[str, ...]:
    """Split a device resource id into its segments, checking the depth."""
    parts = tuple(entity_id.split("."))
    if len(parts) != ID_DEPTH[kind] or any(not p for p in parts):
        raise QuickIdError(f"{kind.value} id {entity_id!r} must have {ID_DEPTH[kind]} dotted segment(s)")
    return parts


# --------------------------------------------------------------------------------------------- checked types


def checked_timestamp(value: str | None) -> str | None:
    """A date as records keep it (RFC 3339, UTC, milliseconds, fixed width). The processor parses and compares stored
    dates, so one it could not read is refused when it is written, not found at every later batch of its gateway."""
    if value is None or value == "":
        return None
    try:
        return iso_from_ms(ms_from_iso(value))
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{value!r} is not an RFC 3339 date (like 2026-01-01T12:00:00.000Z)") from None


Timestamp = Annotated[str | None, AfterValidator(checked_timestamp)]
"""An optional date, checked and kept in the records' form (``checked_timestamp``)."""
Sequence64 = Annotated[int, PydField(ge=0, le=INT64_MAX)]
"""An edge sequence number: what every store and the processor's order keys hold."""
_GO_DURATION: Final = re.compile(r"^(?:\d+(?:\.\d+)?\s*(?:ns|us|µs|ms|s|m|h|d)?)+\Z", re.IGNORECASE)
"""What the edge reads as a duration (``edge/gateways/util.parse_duration``)."""


def checked_duration(value: str) -> str:
    """A Go-style duration (``15s``, ``1m30s``) as the reference's gateway configs write them; the edge would
    quietly fall back to its default on anything else."""
    text = value.strip()
    if not _GO_DURATION.match(text):
        raise ValueError(f"{value!r} is not a duration (like 15s, 500ms, 1m30s)")
    return text


# --------------------------------------------------------------------------------------------- models


class CamelModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        use_enum_values=True,
    )

    def record(self) -> Record:
        """The JSON-shaped dict that repositories store."""
        return self.model_dump(mode="json")


class State(CamelModel):
    status: StateStatus = StateStatus.UNAVAILABLE
    message: str = ""
    since: Timestamp = None


class Payload(CamelModel):
    """A field's current or previous value. ``sequence`` breaks ties between equal edge timestamps."""

    value: Any = None
    is_received: bool = False
    timestamp: Timestamp = None
    sequence: Sequence64 = 0


class _Labelled(CamelModel):
    labels: dict[str, str] = PydField(default_factory=dict)
    others: dict[str, Any] = PydField(default_factory=dict)
    modified_on: Timestamp = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in value.items()}
        return value


def _check_segment(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{what} {value!r} must be 1-128 characters of letters, digits, '_', '-', ':', '@', "
                         "'~' (no dots; no MQTT wildcards)")
    return value


class Gateway(_Labelled):
    id: str
    description: str = ""
    enabled: bool = True
    reconnect_delay: Annotated[str, AfterValidator(checked_duration)] = "15s"
    queue_failed_message: bool = False
    provider: dict[str, Any] = PydField(default_factory=dict)
    message_logger: dict[str, Any] = PydField(default_factory=dict)
    state: State = PydField(default_factory=State)
    last_transaction: Timestamp = None
    edge_id: str | None = None
    """The edge device (IoT thing) that owns this gateway: only that thing's publishes may speak for it, and its
    downlinks go to that thing's down topic (``core/identity.py``). Set from the API, or by the gateway's first
    message (then ``cloud_config`` is false). ``None``: no edge yet; the first thing to send for it claims it."""
    cloud_config: bool = True
    """Whether the cloud sends this gateway's config to its edge through the device shadow
    (``mycontroller_protocol.shadow``). False for a gateway the edge runs from its own YAML file (bound to the edge
    by its first message)."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_segment(value, "gateway id")

    @field_validator("edge_id")
    @classmethod
    def _edge_id(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _check_segment(value, "edgeId")


class Node(_Labelled):
    id: str = ""
    gateway_id: str
    node_id: str
    name: str = ""
    state: State = PydField(default_factory=State)
    last_seen: Timestamp = None

    @field_validator("gateway_id", "node_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        return _check_segment(value, "id")

    def model_post_init(self, _context: Any) -> None:
        self.id = composite_id(self.gateway_id, self.node_id)


class Source(_Labelled):
    id: str = ""
    gateway_id: str
    node_id: str
    source_id: str
    name: str = ""
    last_seen: Timestamp = None

    @field_validator("gateway_id", "node_id", "source_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        return _check_segment(value, "id")

    def model_post_init(self, _context: Any) -> None:
        self.id = composite_id(self.gateway_id, self.node_id, self.source_id)


class FieldModel(_Labelled):
    """A field (named ``FieldModel`` so as not to shadow pydantic's ``Field``)."""

    id: str = ""
    gateway_id: str
    node_id: str
    source_id: str
    field_id: str
    name: str = ""
    metric_type: MetricType = MetricType.NONE
    current: Payload = PydField(default_factory=Payload)
    previous: Payload = PydField(default_factory=Payload)
    formatter: dict[str, Any] = PydField(default_factory=dict)
    unit: str = ""
    no_change_since: Timestamp = None
    last_seen: Timestamp = None

    @field_validator("gateway_id", "node_id", "source_id", "field_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        return _check_segment(value, "id")

    def model_post_init(self, _context: Any) -> None:
        self.id = composite_id(self.gateway_id, self.node_id, self.source_id, self.field_id)


DEVICE_MODELS: Final[dict[Kind, type[CamelModel]]] = {
    Kind.GATEWAY: Gateway,
    Kind.NODE: Node,
    Kind.SOURCE: Source,
    Kind.FIELD: FieldModel,
}


def kind_of_record(record: Record) -> Kind:
    """Which device kind a record is, from the ids it carries."""
    if "fieldId" in record:
        return Kind.FIELD
    if "sourceId" in record:
        return Kind.SOURCE
    if "nodeId" in record:
        return Kind.NODE
    return Kind.GATEWAY


def parent_id(kind: Kind, entity_id: str) -> str | None:
    if kind not in PARENT_KIND:
        return None
    return entity_id.rpartition(".")[0]


@dataclass(slots=True)
class DomainEvent:
    """What the processor and the API announce on the bus; the websocket sends it as the reference does.

    A slotted dataclass, not a pydantic model: the processor makes one per changed entity per batch.
    """

    type: str
    entity_type: str
    entity_id: str
    entity_quick_id: str
    entity: Record | None = None

    def to_dict(self) -> Record:
        return {
            "type": self.type,
            "entityType": self.entity_type,
            "entityId": self.entity_id,
            "entityQuickId": self.entity_quick_id,
            "entity": self.entity,
        }

    @classmethod
    def from_dict(cls, data: Record) -> DomainEvent:
        return cls(
            type=str(data["type"]),
            entity_type=str(data["entityType"]),
            entity_id=str(data["entityId"]),
            entity_quick_id=str(data.get("entityQuickId") or f"{data['entityType']}:{data['entityId']}"),
            entity=data.get("entity"),
        )


def event(event_type: EventType | Literal["created", "updated", "deleted", "requested"], kind: Kind | str,
          record: Record) -> DomainEvent:
    """A domain event for a record."""
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return DomainEvent(str(event_type), kind_value, record["id"], f"{kind_value}:{record['id']}", record)


# --------------------------------------------------------------------------------------------- firmware

FIRMWARE_UINT16_LABELS: Final = ("ms_type_id", "ms_version_id")
"""MySensors OTA labels: the firmware type and version a node's bootloader asks for, each 0-65535."""


class FirmwareFile(CamelModel):
    """What the server computed from the uploaded bytes (never taken from the client)."""

    name: str = ""
    checksum: str = ""
    """``sha256:<hex>`` of the stored bytes."""
    size: int = 0


class Firmware(CamelModel):
    """``{id, description, file{name, checksum, size}, labels}``: the bytes live in the blob store under
    ``firmware/<id>``, uploaded separately."""

    id: str
    description: str = PydField(default="", max_length=2048)
    file: FirmwareFile = PydField(default_factory=FirmwareFile)
    labels: dict[str, str] = PydField(default_factory=dict)
    modified_on: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_segment(value, "firmware id")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        value = _Labelled._labels_as_strings(value)
        if isinstance(value, dict):
            for key in FIRMWARE_UINT16_LABELS:
                text = label(value, key)
                if text is None:
                    continue
                stripped = text.strip()
                if not stripped.isdigit() or not 0 <= int(stripped) <= 65535:
                    raise ValueError(f"{key} must be an integer 0-65535, got {text!r}")
        return value
