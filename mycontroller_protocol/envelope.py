"""Envelopes: how one device message travels from the edge to the processor, and how many share a publish.

The edge wraps every device message (gateway id, provider, edge timestamp, per-gateway sequence, message id,
raw payload and, for MQTT devices, the topic) and packs many into one uplink publish, because AWS IoT bills
per 5 KB and allows about 100 publishes a second per connection. Keys on the wire are one letter for the
same reason. Downlinks travel the other way in the same spirit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .errors import ProtocolError

MAX_RAW_BYTES = 4096
"""A device message longer than this is rejected: no MySensors, Tasmota or generic payload needs more."""

PUBLISH_VERSION = 1


_GOOD_GATEWAY_IDS: set[str] = set()


def _good_gateway_id(gateway_id: str) -> bool:
    """A gateway id is one id segment (no dots, no MQTT wildcards); the ones seen are remembered."""
    from .ids import ID_PATTERN

    if ID_PATTERN.match(gateway_id) is None:
        return False
    if len(_GOOD_GATEWAY_IDS) < 100_000:
        _GOOD_GATEWAY_IDS.add(gateway_id)
    return True


class EnvelopeError(ProtocolError, ValueError):
    """A publish or envelope that cannot be read; the message says what is wrong."""


@dataclass(slots=True)
class Envelope:
    gateway_id: str
    provider: str
    timestamp: int
    """Edge time of reception, epoch milliseconds."""
    sequence: int
    """Per-gateway, strictly increasing at the edge; orders messages with equal timestamps."""
    message_id: str
    """Unique per message; a message id seen before is not applied again."""
    raw: str
    topic: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "g": self.gateway_id,
            "p": self.provider,
            "t": self.timestamp,
            "s": self.sequence,
            "i": self.message_id,
            "r": self.raw,
        }
        if self.topic is not None:
            wire["o"] = self.topic
        return wire

    @classmethod
    def from_wire(cls, wire: Any) -> Envelope:
        # Fast path: a well-formed envelope passes with a handful of exact type checks (the ingest hot path).
        if type(wire) is dict:
            try:
                gateway_id, provider, timestamp = wire["g"], wire["p"], wire["t"]
                sequence, message_id, raw = wire["s"], wire["i"], wire["r"]
            except KeyError:
                pass
            else:
                topic = wire.get("o")
                if (type(gateway_id) is str and type(provider) is str and type(timestamp) is int
                        and type(sequence) is int and type(message_id) is str and type(raw) is str
                        and (topic is None or type(topic) is str) and gateway_id and provider and message_id
                        and timestamp >= 0 and sequence >= 0 and len(raw) <= MAX_RAW_BYTES
                        and (gateway_id in _GOOD_GATEWAY_IDS or _good_gateway_id(gateway_id))):
                    return cls(gateway_id, provider, timestamp, sequence, message_id, raw, topic)
        return cls._checked(wire)

    @classmethod
    def _checked(cls, wire: Any) -> Envelope:
        """The slow path: find what is wrong and say so."""
        if not isinstance(wire, dict):
            raise EnvelopeError(f"envelope must be an object, got {type(wire).__name__}")
        try:
            gateway_id, provider, timestamp = wire["g"], wire["p"], wire["t"]
            sequence, message_id, raw = wire["s"], wire["i"], wire["r"]
        except KeyError as missing:
            raise EnvelopeError(f"envelope is missing key {missing.args[0]!r}") from None
        if not isinstance(gateway_id, str) or not _good_gateway_id(gateway_id):
            raise EnvelopeError(f"envelope gateway id 'g' must be 1-128 id characters (letters, digits, _ - : @ ~): "
                                f"{gateway_id!r}")
        if not isinstance(provider, str) or not provider:
            raise EnvelopeError(f"envelope provider 'p' must be a non-empty string: {provider!r}")
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
            raise EnvelopeError(f"envelope timestamp 't' must be epoch milliseconds: {timestamp!r}")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise EnvelopeError(f"envelope sequence 's' must be a non-negative integer: {sequence!r}")
        if not isinstance(message_id, str) or not message_id:
            raise EnvelopeError(f"envelope message id 'i' must be a non-empty string: {message_id!r}")
        if not isinstance(raw, str):
            raise EnvelopeError(f"envelope raw payload 'r' must be a string: {type(raw).__name__}")
        if len(raw) > MAX_RAW_BYTES:
            raise EnvelopeError(f"envelope raw payload is {len(raw)} characters, more than {MAX_RAW_BYTES}")
        topic = wire.get("o")
        if topic is not None and not isinstance(topic, str):
            raise EnvelopeError(f"envelope topic 'o' must be a string: {topic!r}")
        return cls(gateway_id, provider, timestamp, sequence, message_id, raw, topic)


def encode_publish(envelopes: list[Envelope]) -> str:
    """One uplink publish body carrying many envelopes."""
    return json.dumps({"v": PUBLISH_VERSION, "e": [e.to_wire() for e in envelopes]}, separators=(",", ":"))


@dataclass(slots=True)
class Downlink:
    """A message for a device, produced by the processor, the API or automation, delivered by the edge.

    ``raw`` is in the provider's native form (a MySensors serial line, a Tasmota command payload); ``topic``
    is set for MQTT devices. ``node_id`` lets the edge hold it for a sleeping node; ``key`` identifies the
    target so that a newer command for the same target replaces an older one in the sleep queue.
    """

    gateway_id: str
    provider: str
    raw: str
    node_id: str = ""
    key: str = ""
    topic: str | None = None
    expires_ms: int | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"g": self.gateway_id, "p": self.provider, "r": self.raw}
        if self.node_id:
            wire["n"] = self.node_id
        if self.key:
            wire["k"] = self.key
        if self.topic is not None:
            wire["o"] = self.topic
        if self.expires_ms is not None:
            wire["x"] = self.expires_ms
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Downlink:
        try:
            return cls(
                gateway_id=str(wire["g"]),
                provider=str(wire["p"]),
                raw=str(wire["r"]),
                node_id=str(wire.get("n", "")),
                key=str(wire.get("k", "")),
                topic=wire.get("o"),
                expires_ms=wire.get("x"),
            )
        except KeyError as missing:
            raise EnvelopeError(f"downlink is missing key {missing.args[0]!r}") from None


def down_topic(thing: str, prefix: str = "mc") -> str:
    """The topic an edge device (IoT thing) gets the downlinks of all its gateways on, each naming its gateway; the
    edge policy lets only that thing subscribe to it (``core/identity.py``)."""
    return f"{prefix}/{thing}/down"


def up_topic(thing: str, prefix: str = "mc") -> str:
    """The topic an edge device (IoT thing) publishes its envelope batches to; the ingest rule forwards each, with
    the thing of the topic, to the ingest queue (``core/identity.py``)."""
    return f"{prefix}/{thing}/up"


BASIC_INGEST_PREFIX: Final = "$aws/rules"
"""AWS IoT Basic Ingest: a publish to ``$aws/rules/<rule>/<topic>`` goes to that rule alone, as if to ``<topic>``,
without the message broker and its messaging charge (the rule and its action are billed as before)."""


def basic_ingest_topic(rule: str, topic: str) -> str:
    """``topic`` published through IoT Basic Ingest to ``rule``."""
    return f"{BASIC_INGEST_PREFIX}/{rule}/{topic}"


def read_basic_ingest_topic(topic: str) -> tuple[str, str] | None:
    """``$aws/rules/<rule>/<topic>`` → (rule, topic); ``None`` for any other topic."""
    parts = topic.split("/", 3)
    if len(parts) == 4 and f"{parts[0]}/{parts[1]}" == BASIC_INGEST_PREFIX and parts[2] and parts[3]:
        return parts[2], parts[3]
    return None


def encode_downlinks(downlinks: list[Downlink]) -> str:
    return json.dumps({"v": PUBLISH_VERSION, "d": [d.to_wire() for d in downlinks]}, separators=(",", ":"))


def decode_downlinks(body: str | bytes) -> list[Downlink]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise EnvelopeError(f"downlink publish is not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("d"), list):
        raise EnvelopeError("downlink publish must be an object with a list 'd'")
    return [Downlink.from_wire(item) for item in data["d"] if isinstance(item, dict)]
