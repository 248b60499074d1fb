"""The ESPHome gateway: several ESPHome devices over their native API, each a node.

Each device has its own connection (``device.py``, with ``aioesphomeapi``: plaintext or Noise-encrypted
protobuf frames on TCP port 6053), reconnected with backoff on its own, so one device that is off does not
hold the others back. Messages go up as provider ``esphome`` (``chalicelib/core/providers/esphome``); commands
come down as ``{"n", "s", "f", "v"}`` or ``{"n", "a"}`` and go to the device that node names.

The gateway is ``up`` while at least one device is connected (or while it only waits for devices to be
discovered), ``down`` when none is; ``python -m edge status`` lists each device. ``aioesphomeapi`` and
``zeroconf`` are imported when the gateway starts, so an agent without an ESPHome gateway never loads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from mycontroller_protocol.envelope import MAX_RAW_BYTES, Downlink
from mycontroller_protocol.esphome.codec import PROVIDER, EspHomeCommandError, read_downlink

from ..base import Gateway, GatewayContext
from .config import EspHomeNodeConfig, parse_settings

if TYPE_CHECKING:
    from .device import EspHomeDevice


class EspHomeGateway(Gateway):
    provider: ClassVar[str] = PROVIDER

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.settings = parse_settings(config)  # EspHomeConfigError: this gateway is not started
        self.logger: logging.Logger = ctx.logger
        self.devices: dict[str, EspHomeDevice] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reported: tuple[str, str] | None = None
        self.emitted = 0
        self.too_large = 0
        self.running = False

    # ----------------------------------------------------------------------------------------- running

    async def run(self) -> None:
        from .device import EspHomeDevice

        self.running = True
        for node in self.settings.nodes:
            self._start(EspHomeDevice(node, self._emit, self._report, self.settings.reconnect_cap_s, self.logger))
        discovery: asyncio.Task[None] | None = None
        if self.settings.discovery:
            from .discovery import EspHomeDiscovery

            browser = EspHomeDiscovery(self._found, self.logger, list(self.settings.discovery_interfaces) or None)
            discovery = asyncio.ensure_future(browser.run())
        if not self.devices:
            self._report()  # else each device reports when it connects or fails to
        try:
            await asyncio.Event().wait()
        finally:
            self.running = False
            tasks = [*self._tasks.values(), *([discovery] if discovery is not None else [])]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks.clear()
            self.ctx.set_state("down", "gateway stopped")

    def _start(self, device: EspHomeDevice) -> None:
        self.devices[device.node_id] = device
        self._tasks[device.node_id] = asyncio.ensure_future(device.run())

    def _found(self, node_id: str, host: str, port: int) -> None:
        """A device announced itself on mDNS: connect to it unless the config already does."""
        from .device import EspHomeDevice

        known = {(d.config.host, d.config.port) for d in self.devices.values()}
        if (host, port) in known or (node_id in self.devices and not self.devices[node_id].config.discovered):
            return
        old = self._tasks.pop(node_id, None)
        if old is not None:  # the device moved to another address: reconnect there
            old.cancel()
        self.logger.info("esphome discovered %s at %s:%d", node_id, host, port)
        node: EspHomeNodeConfig = self.settings.discovered_node(node_id, host, port)
        self._start(EspHomeDevice(node, self._emit, self._report, self.settings.reconnect_cap_s, self.logger))
        self._report()

    def _emit(self, message: dict[str, Any], command: bool) -> None:
        raw = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        if len(raw) > MAX_RAW_BYTES:
            self.too_large += 1
            self.logger.warning("esphome message of %d characters dropped (%s %s)", len(raw), message.get("t"),
                                message.get("s"))
            return
        self.ctx.emit(raw, command=command)
        self.emitted += 1

    def _report(self) -> None:
        """Gateway state from the devices' states, sent only when it changes."""
        devices = list(self.devices.values())
        up = [d.node_id for d in devices if d.connected]
        if not devices:
            state = ("up", "discovering ESPHome devices (mDNS)")
        elif up:
            state = ("up", f"{len(up)} of {len(devices)} devices connected: {', '.join(sorted(up))}")
        else:
            state = ("down", "no device connected: " + "; ".join(f"{d.node_id} {d.message}" for d in devices))
        if state != self._reported and self.running:
            self._reported = state
            self.ctx.set_state(*state)

    # ----------------------------------------------------------------------------------------- commands

    async def send(self, downlink: Downlink) -> None:
        """Carry out one command; raises (the agent counts and logs it) when it cannot be carried out."""
        from .entities import EspHomeCommandRefused

        try:
            data = read_downlink(downlink.raw)
        except EspHomeCommandError as error:
            raise EspHomeCommandRefused(str(error)) from None
        device = self.devices.get(data["n"])
        if device is None:
            raise EspHomeCommandRefused(f"no ESPHome device {data['n']!r} on gateway {self.gateway_id!r}")
        if "a" in data:
            done = await device.action(str(data["a"]))
        else:
            done = device.command(str(data["s"]), str(data["f"]), data["v"])
        self.logger.info("esphome %s: %s", device.node_id, done)

    def status(self) -> dict[str, Any]:
        devices = {node_id: device.status() for node_id, device in self.devices.items()}
        return {"provider": self.provider, "protocol": "esphome native API", "connected":
                any(d["connected"] for d in devices.values()), "discovery": self.settings.discovery,
                "emitted": self.emitted, "too_large": self.too_large, "devices": devices}
