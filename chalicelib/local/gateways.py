"""The edge agent inside the local stack, with the in-process uplink and downlink.

``make run`` runs the very agent a Raspberry Pi runs (``edge.agent.EdgeAgent``: its gateway plugins, its
spool under ``DATA_DIR/edge/``, its packing of envelopes into publishes), on an asyncio loop in a thread. Its
uplink hands publishes to the in-process ingest queue; downlinks from the API and the processor come back
through ``LocalDownlink`` to the agent, which writes them to the right gateway.

With the local shadow service, the agent is edge ``local`` with ``cloud_config``: gateway resources with
``"edgeId": "local"`` reach it through its shadow as they would reach a Raspberry Pi through AWS IoT Core, and
it starts, restarts and stops them; downlinks are routed to whatever gateways it runs at the moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.envelope import Downlink, down_topic, encode_downlinks

if TYPE_CHECKING:
    from ..adapters.shadow_local import LocalShadowStore
    from ..bootstrap import Container

log = logging.getLogger("mycontroller.local.gateways")

EDGE_ID = "local"
"""The local stack's edge device: gateway resources with this ``edgeId`` run in its agent."""


class LocalGatewayHost:
    def __init__(self, gateways: list[dict[str, Any]], publish: Callable[[bytes], None], downlink: Any,
                 data_dir: Path, shadow: Any = None) -> None:
        from edge.agent import EdgeAgent  # the edge's runtime, imported only when the local stack runs it
        from edge.config import parse_config
        from edge.uplink.inprocess import InProcessUplink

        edge: dict[str, Any] = {"id": EDGE_ID, "data_dir": str(data_dir / "edge")}
        if shadow is not None:
            edge.update(cloud_config=True, shadow_name=shadow.shadow_name)
        config = parse_config({"edge": edge, "uplink": {"type": "inprocess"}, "gateways": gateways},
                              base_dir=data_dir, source="local stack gateways")
        self.agent = EdgeAgent(config, publish_handler=publish)
        self.downlink = downlink
        self.gateway_ids = list(self.agent.gateways)
        self._routed: set[str] = set()
        self._started_routing = False
        self._route_lock = threading.Lock()  # called from the agent's thread and from start()
        uplink = self.agent.uplink
        if shadow is not None and isinstance(uplink, InProcessUplink):
            uplink.topic_handler = shadow.device_publish
            shadow.attach_device(EDGE_ID, lambda topic, payload: uplink.deliver_downlink(payload, topic))
            uplink.topics_changed = self._route
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-edge-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the local edge agent did not start")
        self._started_routing = True
        self._route(self.agent.uplink.down_topics)
        log.info("gateways running: %s", ", ".join(sorted(self._routed)) or "none")

    def _route(self, topics: list[str]) -> None:
        """Downlinks go to the gateways the agent runs now (those of the file, and the cloud's of the moment)."""
        if not self._started_routing:
            return
        prefix = self.agent.config.uplink.topic_prefix + "/"
        wanted = {t[len(prefix):-len("/down")] for t in topics if t.startswith(prefix) and t.endswith("/down")}
        with self._route_lock:
            for gateway_id in sorted(wanted - self._routed):
                self.downlink.register(gateway_id, self._to_agent(gateway_id))
            for gateway_id in sorted(self._routed - wanted):
                self.downlink.unregister(gateway_id)
            self._routed = wanted
            self.gateway_ids = sorted(wanted)

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
        self._started_routing = False
        for gateway_id in sorted(self._routed):
            self.downlink.unregister(gateway_id)
        self._routed = set()
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


def local_shadow(container: Container) -> LocalShadowStore:
    """The local shadow service: edge ``local``'s desired state written from the repository now; reported documents
    go back into the gateway resources (the container wires that, as the ``shadow_reported`` function in AWS)."""
    from ..adapters.shadow_local import LocalShadowStore

    shadow = container.shadow
    if not isinstance(shadow, LocalShadowStore):
        raise TypeError("the local stack's agent needs the local shadow service (SHADOW=local)")
    container.gateway_sync.sync_things({EDGE_ID})
    return shadow
