"""What the contract fixtures hand out besides the adapter: small observers of a port's effects.

A port's effect is not always a return value (a bus delivery, a downlink, a schedule's target input, a queued
handler request, a device's shadow report): each harness observes it the way that adapter's side really
delivers it, so that one test body holds for every adapter. The fixtures that build them are in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from chalicelib.core.auth import SigningSecret
from chalicelib.core.ports import (
    DelayedHandlerQueue,
    DownlinkSender,
    EventBus,
    ScheduleRegistry,
    SecretBox,
    ShadowStore,
)
from mycontroller_protocol.envelope import Downlink


@dataclass
class BusHarness:
    """The bus under contract and ``tap(pattern)``: an observer receiving what a subscriber with that pattern
    gets (a subscription on the local bus; an EventBridge rule with an SQS target in AWS)."""

    bus: EventBus
    tap: Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]]


@dataclass
class DownlinkHarness:
    """The sender, ``received(addressee)``: what that edge agent got, in order (its registered callback locally;
    the payloads moto recorded on its down topic in AWS), and ``owner(gateway)``: the edge a gateway's downlinks
    go to, or None when no edge owns it."""

    sender: DownlinkSender
    received: Callable[[str], list[Downlink]]
    owner: Callable[[str], str | None]


@dataclass(frozen=True)
class Registered:
    """A schedule as the registry holds it."""

    expression: str
    timezone: str
    start: datetime | None
    end: datetime | None


@dataclass
class ScheduleHarness:
    """The registry, ``registered(name)`` (what is stored under a name) and ``target_input(name)`` (what the
    target receives when it fires: the local timer's call; the schedule's target input in AWS)."""

    registry: ScheduleRegistry
    registered: Callable[[str], Registered]
    target_input: Callable[[str], dict[str, Any]]


@dataclass
class QueueHarness:
    """The queue and ``received(count, timeout)``: the requests its consumer got (the local queue's consumer;
    an SQS receive in AWS), waiting up to ``timeout`` for ``count`` of them."""

    queue: DelayedHandlerQueue
    received: Callable[[int, float], list[dict[str, Any]]]


@dataclass
class ShadowHarness:
    """The store, ``new_thing()`` (an edge device of its own), ``report(thing, state)`` (the edge agent writing
    its reported section, as it does over MQTT) and ``racing(thing, desired)`` (while active, the first
    ``update_desired`` is overtaken by another writer making desired ``desired``, between reading the shadow and
    writing its update)."""

    store: ShadowStore
    new_thing: Callable[[], str]
    report: Callable[[str, dict[str, Any]], None]
    racing: Callable[[str, dict[str, Any]], Any]


@dataclass
class SecretsHarness:
    """The box, ``reopen()`` (a new box over the same key: a restart, another function) and ``other()`` (a box
    over a different key)."""

    box: SecretBox
    reopen: Callable[[], SecretBox]
    other: Callable[[], SecretBox]


@dataclass
class SigningHarness:
    """``make()``: a new ``SigningSecret`` over one location (a process starting); ``stored()``: the key kept
    there, as ``get`` would return it, or None; ``preset(text)``: a key put there beforehand (by the deployment,
    an earlier version); ``elsewhere()``: a secret over another location."""

    make: Callable[[], SigningSecret]
    stored: Callable[[], bytes | None]
    preset: Callable[[str], None]
    elsewhere: Callable[[], SigningSecret]


IDEMPOTENCY_PREFIX: Final = "mycontroller.contract"
"""The key prefix of the contract's idempotency records (the handler function has its own)."""


@dataclass
class IdempotencyHarness:
    """``layer(ttl_s)``: a persistence layer over one store, configured as the handler function configures its
    own (``key`` is the idempotency key); several layers share the store, as concurrent functions do."""

    layer: Callable[..., Any]
    layers: list[Any] = field(default_factory=list)
