"""Operations: what a provider's interpreter makes of one device message, for the processor to apply.

Providers (MySensors, Tasmota, normalized JSON, edge state) turn raw device messages into these few
provider-neutral operations; the processor owns storage, ordering, coalescing, metrics and events.
Slotted dataclasses: one or two are made per device message on the ingest hot path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mycontroller_protocol.envelope import Downlink, Envelope

from .errors import DomainError
from .model import Record


class InterpretError(DomainError, ValueError):
    """A device message the provider cannot make sense of; reported per message, never raised out of a batch."""


def json_object(raw: str, what: str) -> dict[str, Any]:
    """A raw payload that must be one JSON object; ``InterpretError`` naming ``what`` otherwise."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise InterpretError(f"{what} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InterpretError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


@dataclass(slots=True)
class FieldValue:
    """A value a device reports for a field (set). Creates the node, source and field on first sight."""

    node_id: str
    source_id: str
    field_id: str
    value: Any
    metric_type: str
    unit: str = ""
    name: str = ""
    source_name: str = ""
    node_name: str = ""


@dataclass(slots=True)
class NodeInfo:
    """Facts about a node: name, labels and ``others`` entries (battery level, sketch, parent id…)."""

    node_id: str
    name: str | None = None
    labels: Mapping[str, str | None] = field(default_factory=dict)
    """``None`` removes a label."""
    others: dict[str, Any] = field(default_factory=dict)
    metric: tuple[str, str, float] | None = None
    """(key, metric type, number) to also write as a metric of the node, e.g. battery_level."""


@dataclass(slots=True)
class SourceInfo:
    """A source (MySensors child sensor) presented with a name and labels."""

    node_id: str
    source_id: str
    name: str | None = None
    labels: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class FieldRequest:
    """A device asks for a field's stored value; the controller answers with a set of it."""

    node_id: str
    source_id: str
    field_id: str


@dataclass(slots=True)
class Reply:
    """An answer the controller sends at once (I_TIME, I_CONFIG…)."""

    downlink: Downlink


@dataclass(slots=True)
class NodeIdRequest:
    """A node without an id asks for one (MySensors I_ID_REQUEST)."""


@dataclass(slots=True)
class NodeSeen:
    """Traffic from a node that carries nothing else: still marks it up and seen."""

    node_id: str


@dataclass(slots=True)
class NodeState:
    """Someone speaks for a node: a broker's last will (Tasmota LWT Offline) marks it down."""

    node_id: str
    status: str
    message: str = ""


@dataclass(slots=True)
class GatewayState:
    """The edge reports a gateway's connection state."""

    status: str
    message: str = ""


Op = FieldValue | NodeInfo | SourceInfo | FieldRequest | Reply | NodeIdRequest | NodeSeen | NodeState | GatewayState


class Interpreter(Protocol):
    """One per provider: turns a raw device message into operations and builds the provider's answers."""

    provider: str

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        """Raises ``InterpretError`` (or a ``ValueError``) saying what is wrong with the message."""
        ...

    # Optional: ``route_key(raw) -> (key, value) | None``. When a message's meaning apart from its value is fixed
    # by a key (a MySensors set line without its payload), the processor caches the op a key yields and skips
    # ``interpret`` for later messages with the same key.

    def reply_value(self, gateway: Record, field: Record) -> Downlink | None:
        """The message that answers a device's request with the field's stored value."""
        ...

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        """The message that hands a new node its id."""
        ...
