"""The Philips Hue gateway: one bridge over CLIP v2 (``aiohue``), its devices, rooms and zones as nodes.

On connect the bridge's whole state is read once and every device, room, zone and service the cloud reads goes
up (provider ``philips_hue``, ``chalicelib/core/providers/hue``); after that the bridge's event stream (HTTPS
server-sent events) brings each change as it happens. A lost event stream, a bridge that reboots or an
unreachable one is reconnected with a growing delay capped by ``reconnectDelay``; after a reconnect, and every
``syncInterval``, the state is read again and only what changed goes up (nothing is missed, nothing is sent
twice for nothing). Button presses are events: they go up as they happen, never from a re-read.

Commands come down as ``{"n", "s", "f", "v"}`` for a light or a room's lights (``grouped_light``): ``on``,
``brightness``, ``color_temperature`` (mirek), ``color`` (CIE xy). ``aiohue`` (and ``aiohttp``) are imported
when the gateway starts, so an agent without a Hue gateway never loads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, ClassVar

from mycontroller_protocol.envelope import MAX_RAW_BYTES, Downlink
from mycontroller_protocol.hue.codec import PROVIDER, HueCommandError, read_downlink

from ...errors import EdgeError
from ..base import Gateway, GatewayContext
from ..util import Backoff
from .config import parse_settings
from .resources import NODE_TYPES, HueIndex, dumps

UNAUTHORIZED = "the bridge refused the application key: pair again (python -m edge pair-hue --host {host})"


class HueCommandRefused(EdgeError, ValueError):
    """A downlink this bridge cannot carry out (no such light, not connected)."""


def _as_dict(item: Any) -> dict[str, Any]:
    from aiohue.util import dataclass_to_dict

    return item if isinstance(item, dict) else dataclass_to_dict(item)


class HueGateway(Gateway):
    provider: ClassVar[str] = PROVIDER

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.settings = parse_settings(config)  # HueConfigError: this gateway is not started
        self.logger: logging.Logger = ctx.logger
        self.bridge: Any = None
        self.index = HueIndex()
        self.sent: dict[str, str] = {}
        """Resource id → the last message sent for it (a re-read sends only what differs)."""
        self.connected = False
        self.message = f"connecting to {self.settings.host}"
        self.counters = {"emitted": 0, "events": 0, "syncs": 0, "commands": 0, "connects": 0, "too_large": 0}
        self._lost: asyncio.Event | None = None
        self._lost_reason = ""

    # ----------------------------------------------------------------------------------------- running

    async def run(self) -> None:
        backoff = Backoff(self.settings.reconnect_cap_s, first=1.0)
        try:
            while True:
                began = time.monotonic()
                reason = await self._session()
                self.connected = False
                self._state("down", reason)
                if time.monotonic() - began > 60:
                    backoff.reset()
                await asyncio.sleep(backoff.next())
        finally:
            self.connected = False
            self.ctx.set_state("down", "gateway stopped")

    async def _session(self) -> str:
        """One connection to the bridge, from the first read to its loss; returns why it ended."""
        from aiohttp import ClientError
        from aiohue import HueBridgeV2
        from aiohue.errors import AiohueException, Unauthorized
        from aiohue.v2.controllers.events import EventType

        settings = self.settings
        bridge = HueBridgeV2(settings.host, settings.app_key)
        lost = self._lost = asyncio.Event()
        self._lost_reason = "event stream lost"

        def on_connection(event_type: Any, _item: Any = None) -> None:
            if event_type == EventType.DISCONNECTED:
                self._lost_reason = "the bridge's event stream was lost"
                lost.set()

        try:
            await asyncio.wait_for(bridge.initialize(), settings.timeout_s)
            self.bridge = bridge
            self.counters["connects"] += 1
            self._sync(bridge)
            bridge.subscribe(self._on_event)
            bridge.events.subscribe(on_connection, event_filter=(EventType.DISCONNECTED,))
            self.connected = True
            self._state("up", f"connected to bridge {bridge.bridge_id or settings.host} "
                              f"({len(self.index.nodes)} devices, rooms and zones)")
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), settings.sync_s)
                if not lost.is_set():
                    await asyncio.wait_for(bridge.fetch_full_state(), settings.timeout_s)
                    self._sync(bridge)
            return self._lost_reason
        except asyncio.CancelledError:
            raise
        except Unauthorized:
            return UNAUTHORIZED.format(host=settings.host)
        except (ClientError, AiohueException, TimeoutError, OSError) as error:
            return f"cannot reach the bridge at {settings.host}: {error or type(error).__name__}"
        finally:
            self.bridge = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(bridge.close(), 5)

    def _state(self, status: str, message: str) -> None:
        if message != self.message:
            (self.logger.info if status == "up" else self.logger.warning)("hue %s: %s", self.gateway_id, message)
        self.message = message
        self.ctx.set_state(status, message)

    def _resources(self, bridge: Any) -> list[dict[str, Any]]:
        items: list[Any] = [*bridge.devices, *bridge.groups, *bridge.lights, *bridge.sensors]
        return [_as_dict(item) for item in items]

    def _sync(self, bridge: Any) -> None:
        """Everything the bridge holds, sent up where it differs from what was sent (button events never)."""
        resources = self._resources(bridge)
        self.index = HueIndex.build(resources)
        self.counters["syncs"] += 1
        nodes_first = sorted(resources, key=lambda r: r.get("type") not in NODE_TYPES)
        for resource in nodes_first:
            if resource.get("type") != "button":
                self._send(resource, only_changed=True)

    def _on_event(self, event_type: Any, item: Any) -> None:
        """A resource the bridge added or changed (aiohue hands the whole resource, the event applied)."""
        from aiohue.v2.controllers.events import EventType

        if event_type not in (EventType.RESOURCE_ADDED, EventType.RESOURCE_UPDATED) or item is None:
            return
        self.counters["events"] += 1
        resource = _as_dict(item)
        if resource.get("type") in NODE_TYPES and self.bridge is not None:
            self.index = HueIndex.build(self._resources(self.bridge))  # a device joined or a room changed
        elif resource.get("id") not in self.index.places and self.bridge is not None:
            self.index = HueIndex.build(self._resources(self.bridge))
        self._send(resource, only_changed=False)

    def _send(self, resource: dict[str, Any], only_changed: bool) -> None:
        message = self.index.message(resource)
        if message is None:
            return
        raw = dumps(message)
        rid = str(resource.get("id"))
        if only_changed and self.sent.get(rid) == raw:
            return
        if len(raw) > MAX_RAW_BYTES:
            self.counters["too_large"] += 1
            self.logger.warning("hue resource %s of %d characters dropped", rid, len(raw))
            return
        self.sent[rid] = raw
        self.ctx.emit(raw, command=resource.get("type") in NODE_TYPES)
        self.counters["emitted"] += 1

    # ----------------------------------------------------------------------------------------- commands

    async def send(self, downlink: Downlink) -> None:
        """Carry out one command; raises (the agent counts and logs it) when it cannot be carried out."""
        try:
            data = read_downlink(downlink.raw)
        except HueCommandError as error:
            raise HueCommandRefused(str(error)) from None
        bridge = self.bridge
        if bridge is None or not self.connected:
            raise ConnectionError(f"hue {self.gateway_id} is not connected ({self.message})")
        node = str(data["n"])
        if "a" in data:  # refresh_node_info: what the bridge knows of the node, sent again
            for resource in self._resources(bridge):
                placed = self.index.places.get(str(resource.get("id")))
                if (resource.get("id") == node or (placed and placed[0] == node)) and resource.get("type") != "button":
                    self._send(resource, only_changed=False)
            return
        target = self.index.targets.get((node, str(data["s"])))
        if target is None:
            raise HueCommandRefused(f"hue {self.gateway_id}: no light or group at {node}.{data['s']}")
        rtype, rid = target
        field, value = data["f"], data["v"]
        kwargs: dict[str, Any] = {}
        if field == "on":
            kwargs["on"] = bool(value)
        elif field == "brightness":
            kwargs.update(on=True, brightness=float(value))
        elif field == "color_temperature":
            kwargs.update(on=True, color_temp=int(value))
        elif field == "color":
            kwargs.update(on=True, color_xy=(float(value["x"]), float(value["y"])))
        controller = bridge.lights if rtype == "light" else bridge.groups.grouped_light
        await asyncio.wait_for(controller.set_state(rid, **kwargs), self.settings.timeout_s)
        self.counters["commands"] += 1
        self.logger.info("hue %s: %s %s %s", self.gateway_id, rtype, field, value)

    def status(self) -> dict[str, Any]:
        return {"provider": self.provider, "protocol": "hue clip v2", "connected": self.connected,
                "transport": f"https {self.settings.host}", "message": self.message,
                "nodes": len(self.index.nodes), **self.counters}
