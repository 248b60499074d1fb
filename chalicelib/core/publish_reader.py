"""The cloud's reader of the publish an edge sends (``decode_publish``): JSON straight into typed envelopes with
msgspec, and where that fails, ``json`` and a reason for each bad envelope.

``read_plain_publish`` takes the plain form (every envelope good) and makes the checks ``Envelope.from_wire``
makes, the gateway ids' pattern once per gateway id rather than per envelope; for anything else it answers None,
and ``decode_publish`` reads the body with ``json`` and says which envelope is wrong and why. msgspec reads a
strict subset of what ``json`` reads (no NaN, no lone surrogates, no integers past 64 bits) and reads it alike, so
both give the same envelopes. The envelopes themselves are the protocol's (``mycontroller_protocol.envelope``);
the edge agent writes publishes but never reads them, so this module (and msgspec) stays on the cloud's side.
"""

from __future__ import annotations

import json
from itertools import starmap
from operator import attrgetter
from typing import Annotated

import msgspec

from mycontroller_protocol.envelope import (
    _GOOD_GATEWAY_IDS,
    MAX_RAW_BYTES,
    PUBLISH_VERSION,
    Envelope,
    EnvelopeError,
    _good_gateway_id,
)

INGEST_BATCH_PUBLISHES = 100
"""Publishes the ingest function takes at once: the SQS event source's ``BatchSize`` (with its 1 s batching
window, so a quiet site's publishes still go within a second) and the local ingest queue's batch. Writes and
events follow the distinct fields a batch touches, so under load a bigger batch costs fewer DynamoDB writes,
EventBridge entries and invocations per message (Lambda caps a batch at 6 MB of payload)."""


class WireEnvelope(msgspec.Struct, gc=False, rename={
        "gateway_id": "g", "provider": "p", "timestamp": "t", "sequence": "s", "message_id": "i", "raw": "r",
        "topic": "o"}):
    """An envelope on the wire, its fields in ``Envelope``'s order. Untracked by the garbage collector: it holds
    strings and numbers only."""

    gateway_id: str
    provider: Annotated[str, msgspec.Meta(min_length=1)]
    timestamp: Annotated[int, msgspec.Meta(ge=0)]
    sequence: Annotated[int, msgspec.Meta(ge=0)]
    message_id: Annotated[str, msgspec.Meta(min_length=1)]
    raw: Annotated[str, msgspec.Meta(max_length=MAX_RAW_BYTES)]
    topic: str | None = None


class WirePublish(msgspec.Struct, gc=False):
    e: list[WireEnvelope]
    v: int = PUBLISH_VERSION


_decode = msgspec.json.Decoder(WirePublish).decode
_astuple = msgspec.structs.astuple
_gateway_id = attrgetter("gateway_id")


def read_plain_publish(body: str | bytes) -> list[Envelope] | None:
    """The envelopes of a publish in the plain form, every one good; None for anything else."""
    try:
        publish = _decode(body)
    except (ValueError, TypeError):  # (msgspec's errors are ValueErrors)
        return None
    wires = publish.e
    if publish.v != PUBLISH_VERSION or not all(
            gateway_id in _GOOD_GATEWAY_IDS or _good_gateway_id(gateway_id)
            for gateway_id in set(map(_gateway_id, wires))):
        return None
    return list(starmap(Envelope, map(_astuple, wires)))


def decode_publish(body: str | bytes) -> tuple[list[Envelope], list[tuple[int, str]]]:
    """Read one uplink publish.

    Returns the good envelopes and, for each bad one, its index and what is wrong with it: one bad envelope
    does not cost the others. A body that is not a publish at all raises ``EnvelopeError``.
    """
    envelopes = read_plain_publish(body)
    if envelopes is not None:  # the form the edge sends, every envelope good
        return envelopes, []
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise EnvelopeError(f"publish is not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("e"), list):
        raise EnvelopeError("publish must be an object with an envelope list 'e'")
    if data.get("v", PUBLISH_VERSION) != PUBLISH_VERSION:
        raise EnvelopeError(f"publish version {data.get('v')!r} is not supported (expected {PUBLISH_VERSION})")
    good: list[Envelope] = []
    bad: list[tuple[int, str]] = []
    for index, wire in enumerate(data["e"]):
        try:
            good.append(Envelope.from_wire(wire))
        except EnvelopeError as error:
            bad.append((index, str(error)))
    return good, bad
