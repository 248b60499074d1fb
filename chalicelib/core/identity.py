"""Devices bound to their identity: which edge device (IoT thing) owns a gateway, and who may speak for it.

An edge device is an IoT thing. Its certificate lets it publish only on ``mc/<thing>/up`` and subscribe to and
receive only ``mc/<thing>/down`` (and its own shadow): the IoT policy pins both to
``${iot:Connection.Thing.ThingName}`` (``infra/identity.py``). So the topic, not the envelope, says who sent a
publish, and the cloud decides per gateway whether that thing may speak for it:

* **Topics and wire formats.** Uplink ``mc/<thing>/up``: ``{"v": 1, "e": [envelope, ...]}`` as before. The ingest
  rule (``SELECT topic(2) AS thing, encode(*, 'base64') AS publish FROM 'mc/+/up'``) hands the ingest queue
  ``{"thing": "<thing>", "publish": "<the publish, base64>"}``: the thing comes from the topic, never from the
  body, and the body reaches the function byte for byte (``ingest_body`` makes the same record for the local
  stack, whose edge is thing ``local``). Downlinks: ``mc/<thing>/down`` carries ``{"v": 1, "d": [downlink,
  ...]}`` for every gateway of that thing, each downlink naming its gateway (``g``); the agent routes it.
* **Who owns a gateway.** Its record's ``edgeId``. A gateway created from the API with ``edgeId`` belongs to that
  thing. A gateway the cloud has never seen is created by its first message, bound to the thing that sent it
  (``edgeId`` = thing, ``cloudConfig: false``: the edge runs it from its own file, the shadow does not carry
  it); the creation is conditional, so of two things racing for a new id exactly one wins. A gateway without
  ``edgeId`` (made before this rule, or from the API without one) is claimed by the first thing that sends for it
  (a plain write: two things claiming one such gateway in the same instant both get that one batch applied, and
  the last write owns it from then on).
* **Refusal.** Envelopes from a thing for a gateway bound to another thing are refused: not applied, counted and
  logged by the ingest function, and never retried (a retry cannot change who sent them).
* **Unique ids.** Gateway ids stay global, as in the API and the reference (quick ids ``field:gw.node.src.field``
  stay as they are): one id, one owner. A second site using an id already bound elsewhere has its envelopes
  for it refused until it renames the gateway in its ``edge.yaml`` (or an operator moves the gateway to it by
  setting ``edgeId``); nothing of one site ever reaches or changes the other's.

``GatewayOwners`` is shared by the ingest function (``admit``) and the downlink adapters (``edges_of``): it keeps
what it read or decided for ``ttl_s`` seconds, so a busy function does not read a gateway per batch. Only a match
is served from it: a thing that is not the remembered owner is checked against a fresh (strongly consistent)
read, so the new owner of a gateway moved from the API is accepted at once; its old owner may still be accepted,
and be sent its commands, by a warm function instance for up to ``ttl_s`` (in the process that made the change,
the API's upsert forgets it at once: the local stack).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import attrgetter
from typing import Any, Final

from mycontroller_protocol.envelope import Downlink, Envelope, EnvelopeError
from mycontroller_protocol.ids import ID_PATTERN

from .model import Gateway, Kind, Record, State, StateStatus, iso_from_ms, now_ms
from .ports import Repository

THING_KEY: Final = "thing"
"""The ingest record's key for the thing that published (the rule's ``topic(2)``)."""
PUBLISH_KEY: Final = "publish"
"""The ingest record's key for the publish body, base64 (the rule's ``encode(*, 'base64')``)."""
LOCAL_EDGE: Final = "local"
"""The local stack's edge device (``make run``): the thing its in-process uplink publishes as."""
OWNERS_TTL_S: Final = 60.0
"""How long a gateway's owner, once read or decided, is taken as known (see the module doc)."""
STATE_PROVIDER: Final = "edge"
"""Envelopes reporting a gateway's state: they do not say which provider the gateway speaks."""
_gateway_id = attrgetter("gateway_id")

EdgeResolver = Callable[[Collection[str]], Mapping[str, str]]
"""Gateway ids → the edge (thing) owning each; gateways without one are left out."""


# --------------------------------------------------------------------------------------------- ingest records


def ingest_body(thing: str, publish: bytes | str) -> str:
    """The ingest queue's record body for a publish on ``mc/<thing>/up``: what the IoT rule makes of it in AWS,
    and what the local stack and tests make the same way."""
    raw = publish.encode() if isinstance(publish, str) else publish
    return json.dumps({THING_KEY: thing, PUBLISH_KEY: base64.b64encode(raw).decode("ascii")}, separators=(",", ":"))


def read_ingest_body(body: str | bytes) -> tuple[str, bytes]:
    """The thing and the publish of an ingest record; ``EnvelopeError`` (a poison record) for anything else, a
    bare publish included: only the rule may say which thing sent it."""
    try:
        record = _record_reader()(body)  # msgspec: JSON and base64 in one pass, in C (the ingest hot path)
    except ValueError:  # msgspec's errors: read it again with json, to say what is wrong
        return _read_ingest_body_checked(body)
    if ID_PATTERN.match(record.thing) is None:
        raise EnvelopeError(f"ingest record's thing {record.thing!r} is not a thing name")
    return record.thing, record.publish


@cache
def _record_reader() -> Callable[[str | bytes], Any]:
    """msgspec's reader of the ingest record, made on first use (the local stack's edge agent never reads one)."""
    import msgspec

    class IngestRecord(msgspec.Struct, gc=False):
        thing: str
        publish: bytes  # base64 in the JSON, as the rule's encode(*, 'base64') writes it

    return msgspec.json.Decoder(IngestRecord).decode


def _read_ingest_body_checked(body: str | bytes) -> tuple[str, bytes]:
    """The slow path: find what is wrong and say so."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise EnvelopeError(f"ingest record is not JSON: {error}") from None
    if not isinstance(data, dict) or PUBLISH_KEY not in data or THING_KEY not in data:
        raise EnvelopeError(f"ingest record must be {{{THING_KEY!r}, {PUBLISH_KEY!r}}} as the ingest rule writes it "
                            "(a publish without the thing that sent it is not accepted)")
    thing, publish = data[THING_KEY], data[PUBLISH_KEY]
    if not isinstance(thing, str) or ID_PATTERN.match(thing) is None:
        raise EnvelopeError(f"ingest record's thing {thing!r} is not a thing name")
    if not isinstance(publish, str):
        raise EnvelopeError(f"ingest record's {PUBLISH_KEY!r} must be base64 text")
    try:
        return thing, base64.b64decode(publish, validate=True)
    except (binascii.Error, ValueError) as error:
        raise EnvelopeError(f"ingest record's {PUBLISH_KEY!r} is not base64: {error}") from None


# --------------------------------------------------------------------------------------------- ownership


def owner_of(record: Mapping[str, Any] | None) -> str | None:
    """The thing a gateway record belongs to, or ``None``."""
    edge = (record or {}).get("edgeId")
    return edge if isinstance(edge, str) and edge else None


def bound_gateway(gateway_id: str, thing: str, provider: str, at_ms: int) -> Record:
    """A gateway record made by its first message: bound to the thing that sent it, run from that edge's file.

    The rest is what the processor makes of a gateway it has never seen (provider from the envelopes, up since
    the first message), so the processor takes it over as if it had made it."""
    return Gateway(
        id=gateway_id,
        provider={"type": provider},
        state=State(status=StateStatus.UP, message="first message", since=iso_from_ms(at_ms)),
        edge_id=thing,
        cloud_config=False,
    ).record()


def claimed(record: Record, thing: str) -> Record:
    """A gateway without an owner, claimed by the first thing that speaks for it (run from its file)."""
    return {**record, "edgeId": thing, "cloudConfig": False}


@dataclass(slots=True, frozen=True)
class Refusal:
    """Envelopes of one thing for a gateway another thing owns."""

    thing: str
    gateway_id: str
    owner: str
    message_ids: tuple[str, ...]


@dataclass(slots=True)
class Admission:
    """What ``GatewayOwners.admit`` decided for a batch."""

    admitted: list[Envelope] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    created: dict[str, Record] = field(default_factory=dict)
    """Gateways this batch created, bound to their thing (id → record)."""
    claimed: dict[str, Record] = field(default_factory=dict)
    """Gateways without an owner that this batch bound to the thing speaking for them."""

    @property
    def refused_count(self) -> int:
        return sum(len(refusal.message_ids) for refusal in self.refused)


class GatewayOwners:
    """Who owns each gateway: the ingest function's check, and the downlink adapters' address book. Thread-safe."""

    def __init__(self, repository: Repository, *, ttl_s: float = OWNERS_TTL_S,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], int] = now_ms) -> None:
        self.repository = repository
        self.ttl_s = ttl_s
        self.clock = clock
        self.now = now
        self._known: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- cache

    def _remembered(self, gateway_id: str, now: float) -> str | None:
        entry = self._known.get(gateway_id)
        if entry is None:
            return None
        if entry[1] < now:
            self._known.pop(gateway_id, None)
            return None
        return entry[0]

    def remember(self, owners: Mapping[str, str]) -> None:
        """Take these owners as known for ``ttl_s``."""
        until = self.clock() + self.ttl_s
        with self._lock:
            if len(self._known) > 100_000:  # a bound, not a policy: entries are cheap to read again
                self._known.clear()
            for gateway_id, thing in owners.items():
                self._known[gateway_id] = (thing, until)

    def forget(self, gateway_ids: Iterable[str]) -> None:
        with self._lock:
            for gateway_id in gateway_ids:
                self._known.pop(gateway_id, None)

    # ----------------------------------------------------------------------------------------- downlinks

    def edges_of(self, gateway_ids: Collection[str]) -> dict[str, str]:
        """The owning thing of each gateway that has one (the downlink adapters' ``EdgeResolver``)."""
        found: dict[str, str] = {}
        missing: list[str] = []
        with self._lock:
            now = self.clock()
            for gateway_id in gateway_ids:
                owner = self._remembered(gateway_id, now)
                if owner is None:
                    missing.append(gateway_id)
                else:
                    found[gateway_id] = owner
        if missing:
            read = {gateway_id: owner for gateway_id, record in self.repository.get_many(Kind.GATEWAY, missing).items()
                    if (owner := owner_of(record)) is not None}
            self.remember(read)
            found.update(read)
        return found

    __call__ = edges_of

    def route(self, downlinks: Sequence[Downlink]) -> tuple[dict[str, list[Downlink]], list[Downlink]]:
        """Downlinks grouped by the thing that owns their gateway (in order), and those whose gateway has none."""
        return route(downlinks, self.edges_of)

    # ----------------------------------------------------------------------------------------- ingest

    def admit(self, publishes: Sequence[tuple[str, Sequence[Envelope]]]) -> Admission:
        """Split a batch's envelopes, given per publishing thing, into those each thing may speak for and those
        refused, binding gateways nobody owns to the first thing that speaks for them (see the module doc).

        The hot path (every gateway of a publish remembered as its thing's) costs a set of gateway ids per publish
        and a dict lookup per gateway: no read, and the publish's envelopes are taken whole."""
        admission = Admission()
        spoken = [(thing, envelopes, set(map(_gateway_id, envelopes))) for thing, envelopes in publishes]
        with self._lock:
            now = self.clock()
            unsure = {gateway_id for thing, _, gateway_ids in spoken for gateway_id in gateway_ids
                      if self._remembered(gateway_id, now) != thing}
        owners: dict[str, str] = {}
        if unsure:
            owners = self._decide(spoken, unsure, admission)
            self.remember(owners)  # what was read or decided now; a remembered match is not extended by its use
        for thing, envelopes, gateway_ids in spoken:
            foreign = {gateway_id for gateway_id in gateway_ids if owners.get(gateway_id, thing) != thing}
            if not foreign:
                admission.admitted.extend(envelopes)
                continue
            refused: dict[str, list[str]] = {}
            for envelope in envelopes:
                if envelope.gateway_id in foreign:
                    refused.setdefault(envelope.gateway_id, []).append(envelope.message_id)
                else:
                    admission.admitted.append(envelope)
            admission.refused.extend(Refusal(thing, gateway_id, owners[gateway_id], tuple(ids))
                                     for gateway_id, ids in refused.items())
        return admission

    def _decide(self, spoken: list[tuple[str, Sequence[Envelope], set[str]]], unsure: set[str],
                admission: Admission) -> dict[str, str]:
        """The owners of the gateways not remembered as their speaker's, from a fresh read, creating and claiming
        for the first thing speaking for one that has none."""
        stored = self.repository.get_many(Kind.GATEWAY, unsure)
        owners: dict[str, str] = {}
        to_create: dict[str, Record] = {}
        to_claim: dict[str, Record] = {}
        at = self.now()
        for thing, envelopes, _ in spoken:
            for gateway_id in dict.fromkeys(e.gateway_id for e in envelopes if e.gateway_id in unsure):
                if gateway_id in owners:
                    continue
                record = stored.get(gateway_id)
                owner = owner_of(record)
                if owner is not None:
                    owners[gateway_id] = owner
                    continue
                owners[gateway_id] = thing
                if record is None:
                    provider = next((e.provider for e in envelopes
                                     if e.gateway_id == gateway_id and e.provider != STATE_PROVIDER), "unknown")
                    to_create[gateway_id] = bound_gateway(gateway_id, thing, provider, at)
                else:
                    to_claim[gateway_id] = claimed(record, thing)
        if to_create:
            # a record without ``current`` is written by ``if_newer`` only where none is stored: create-if-absent
            lost = self.repository.put_many(Kind.GATEWAY, list(to_create.values()), if_newer=True)
            for gateway_id in lost:  # another batch made it first: its owner decides
                mine = to_create.pop(gateway_id)
                record = self.repository.get(Kind.GATEWAY, gateway_id)
                owner = owner_of(record)
                if owner is not None:
                    owners[gateway_id] = owner
                else:  # made without an owner (or deleted again) meanwhile: this thing's after all
                    to_claim[gateway_id] = mine if record is None else claimed(record, owners[gateway_id])
        if to_claim:
            self.repository.put_many(Kind.GATEWAY, list(to_claim.values()))
        admission.created, admission.claimed = to_create, to_claim
        return owners


def route(downlinks: Sequence[Downlink], edges: EdgeResolver) -> tuple[dict[str, list[Downlink]], list[Downlink]]:
    """Downlinks grouped by the thing owning their gateway, in order, and those whose gateway no thing owns."""
    owners = edges({d.gateway_id for d in downlinks}) if downlinks else {}
    groups: dict[str, list[Downlink]] = {}
    unrouted: list[Downlink] = []
    for downlink in downlinks:
        thing = owners.get(downlink.gateway_id)
        if thing is None:
            unrouted.append(downlink)
        else:
            groups.setdefault(thing, []).append(downlink)
    return groups, unrouted


def one_edge(thing: str = LOCAL_EDGE) -> EdgeResolver:
    """A resolver for a site with a single edge device: every gateway is its (tests, tools)."""

    def resolve(gateway_ids: Collection[str]) -> dict[str, str]:
        return dict.fromkeys(gateway_ids, thing)

    return resolve
