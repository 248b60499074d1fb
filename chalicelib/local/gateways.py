"""The edge agent inside the local stack, with the in-process uplink and downlink.

``make run`` runs the very agent a Raspberry Pi runs (``edge.agent.EdgeAgent``: its gateway plugins, its
spool under ``DATA_DIR/edge/``, its packing of envelopes into publishes), on an asyncio loop in a thread. Its
uplink hands publishes to the in-process ingest queue; downlinks from the API and the processor come back
through ``LocalDownlink`` to the agent, which writes them to the right gateway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.envelope import Downlink, down_topic, encode_downlinks

log = logging.getLogger("mycontroller.local.gateways")


class LocalGatewayHost:
    def __init__(self, gateways: list[dict[str, Any]], publish: Callable[[bytes], None], downlink: Any,
                 data_dir: Path) -> None:
        from edge.agent import EdgeAgent  # the edge's runtime, imported only when the local stack runs it
        from edge.config import parse_config

        config = parse_config({
            "edge": {"id": "local", "data_dir": str(data_dir / "edge")},
            "uplink": {"type": "inprocess"},
            "gateways": gateways,
        }, base_dir=data_dir, source="local stack gateways")
        self.agent = EdgeAgent(config, publish_handler=publish)
        self.downlink = downlink
        self.gateway_ids = list(self.agent.gateways)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-edge-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the local edge agent did not start")
        for gateway_id in self.gateway_ids:
            self.downlink.register(gateway_id, self._to_agent(gateway_id))
        log.info("gateways running: %s", ", ".join(self.gateway_ids) or "none")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        await self.agent.start()
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.agent.stop()

    def stop(self) -> None:
        for gateway_id in self.gateway_ids:
            self.downlink.unregister(gateway_id)
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)

    def _to_agent(self, gateway_id: str) -> Callable[[list[Downlink]], None]:
        from edge.uplink.inprocess import InProcessUplink

        uplink = self.agent.uplink
        if not isinstance(uplink, InProcessUplink):
            raise TypeError("the local stack runs the edge agent with the in-process uplink")

        def deliver(group: list[Downlink]) -> None:
            uplink.deliver_downlink(encode_downlinks(group), topic=down_topic(gateway_id))

        return deliver

    def status(self) -> dict[str, Any]:
        return self.agent.status()
