"""ESPHome devices found by mDNS (``_esphomelib._tcp``), for gateways with ``discovery: true``.

Off by default: a gateway then connects to exactly the devices its config names. With discovery on, every
device that announces itself on the LAN becomes a node (its id the device's name) reached with the gateway's
global password or encryption key; devices already configured (by id or by address) are left to their config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..util import clean_id

SERVICE_TYPE = "_esphomelib._tcp.local."

Found = Callable[[str, str, int], None]
"""(node id, address, port) of a device announcing itself."""


class EspHomeDiscovery:
    """Browses for ESPHome devices until cancelled; ``found`` is called (on the loop) for each one resolved."""

    def __init__(self, found: Found, logger: logging.Logger, interfaces: list[str] | None = None) -> None:
        self.found = found
        self.logger = logger
        self.interfaces = interfaces
        self.seen: dict[str, tuple[str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        from zeroconf import InterfaceChoice
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        zeroconf = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All)
        browser = AsyncServiceBrowser(zeroconf.zeroconf, [SERVICE_TYPE], handlers=[self._on_change])
        self.logger.info("esphome discovery browsing %s", SERVICE_TYPE)
        try:
            await asyncio.Event().wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await browser.async_cancel()
            await zeroconf.async_close()

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Any, service_type: str, name: str) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, 3000):
            self.logger.info("esphome discovery: %s did not answer", name)
            return
        addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
        if not addresses or not info.port:
            return
        node_id = clean_id(name.removesuffix("." + service_type).removesuffix(service_type), "esphome")
        found = (addresses[0], int(info.port))
        if self.seen.get(node_id) == found:
            return
        self.seen[node_id] = found
        self.found(node_id, *found)
