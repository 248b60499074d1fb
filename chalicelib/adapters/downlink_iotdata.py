"""``DownlinkSender`` over AWS IoT Core: one iot-data ``publish`` per edge device, to its down topic.

A downlink goes to the edge device (IoT thing) that owns its gateway (the gateway's ``edgeId``, looked up by the
``edges`` resolver, ``core/identity.py``), on ``mc/<thing>/down``: the only down topic that thing may subscribe
to, so two sites with a gateway of the same id can never execute each other's commands. Each downlink names its
gateway; the agent routes it there. A downlink whose gateway no edge owns is not published (logged and counted
in ``calls["unrouted"]``): no edge runs that gateway, and a retry would not find one either.

IoT Core bills per publish (in 5 KB steps) and caps a message at 128 KB, so the downlinks of one ``send`` are
grouped by edge and each group goes as one publish (``envelope.encode_downlinks``), split only when the body
would pass 128 KB. QoS 1: the edge agent's persistent session receives it even across a short disconnect.

One edge's failure does not hold back the others: every group is attempted, then ``DownlinkError`` lists
what was not published (the caller's batch fails and is redelivered: at-least-once, as everywhere).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

import boto3

from chalicelib.core.identity import EdgeResolver, route
from mycontroller_protocol.envelope import Downlink, down_topic, encode_downlinks

from .errors import AdapterError

log = logging.getLogger(__name__)

MAX_PUBLISH_BYTES: Final = 128 * 1024
"""AWS IoT Core's largest message payload."""

_EMPTY_BODY_BYTES: Final = len(encode_downlinks([]).encode())


class DownlinkError(AdapterError):
    """Some downlinks were not published; ``failed`` holds ``(downlink, reason)`` pairs."""

    def __init__(self, failed: list[tuple[Downlink, str]]) -> None:
        self.failed = failed
        gateways = sorted({d.gateway_id for d, _ in failed})
        reasons = "; ".join(sorted({reason for _, reason in failed})[:3])
        super().__init__(f"{len(failed)} downlink(s) for gateway(s) {', '.join(gateways)} not published: {reasons}")


def split_bodies(downlinks: list[Downlink], limit: int = MAX_PUBLISH_BYTES
                 ) -> Iterator[tuple[list[Downlink], str | None]]:
    """Publish bodies of at most ``limit`` bytes, in order: ``(group, body)``, or ``([d], None)`` for a downlink
    that alone exceeds the limit.

    Sizes add up exactly: ``encode_downlinks`` joins the items' compact JSON with commas inside a fixed frame.
    """
    group: list[Downlink] = []
    size = _EMPTY_BODY_BYTES
    for downlink in downlinks:
        item = len(json.dumps(downlink.to_wire(), separators=(",", ":")).encode())
        if _EMPTY_BODY_BYTES + item > limit:
            if group:  # keep the order: what came before goes first
                yield group, encode_downlinks(group)
                group, size = [], _EMPTY_BODY_BYTES
            yield [downlink], None
            continue
        added = item + (1 if group else 0)
        if group and size + added > limit:
            yield group, encode_downlinks(group)
            group, size, added = [], _EMPTY_BODY_BYTES, item
        group.append(downlink)
        size += added
    if group:
        yield group, encode_downlinks(group)


class IotDataDownlink:
    """``DownlinkSender`` adapter. ``calls`` counts ``publish`` requests, ``downlinks``, payload ``bytes`` and the
    ``unrouted`` downlinks (no edge owns their gateway)."""

    def __init__(self, client: Any = None, topic_prefix: str = "mc", *, edges: EdgeResolver,
                 max_publish_bytes: int = MAX_PUBLISH_BYTES) -> None:
        self._client = client if client is not None else boto3.client("iot-data")
        self.topic_prefix = topic_prefix
        self.edges = edges
        self.max_publish_bytes = max_publish_bytes
        self._calls_lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    def send(self, downlinks: Sequence[Downlink]) -> None:
        """Publish each edge's downlinks together; raises ``DownlinkError`` after trying every edge."""
        if not downlinks:
            return
        groups, unrouted = route(downlinks, self.edges)
        if unrouted:
            with self._calls_lock:
                self.calls["unrouted"] += len(unrouted)
            log.warning("downlink: no edge device owns gateway(s) %s; %d message(s) not sent",
                        ", ".join(sorted({d.gateway_id for d in unrouted})), len(unrouted))
        failed: list[tuple[Downlink, str]] = []
        cause: Exception | None = None
        for thing, group in groups.items():
            topic = down_topic(thing, self.topic_prefix)
            for part, body in split_bodies(group, self.max_publish_bytes):
                if body is None:
                    failed.append((part[0], f"larger than the {self.max_publish_bytes} byte publish limit"))
                    continue
                payload = body.encode()
                try:
                    self._client.publish(topic=topic, qos=1, payload=payload)
                except Exception as error:
                    log.error("downlink: publish of %d message(s) to %s failed: %s", len(part), topic, error)
                    cause = error
                    failed.extend((d, f"publish to {topic} failed: {error}") for d in part)
                    continue
                with self._calls_lock:
                    self.calls["publish"] += 1
                    self.calls["downlinks"] += len(part)
                    self.calls["bytes"] += len(payload)
        if failed:
            raise DownlinkError(failed) from cause

    @property
    def publishes(self) -> int:
        return self.calls["publish"]

    def close(self) -> None:
        """Nothing to release: the client may be shared."""
