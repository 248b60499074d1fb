"""The edge agent inside the local stack, with the in-process uplink and downlink.

``make run`` runs the very agent a Raspberry Pi runs (``edge.agent.EdgeAgent``: its gateway plugins, its
spool under ``DATA_DIR/edge/``, its packing of envelopes into publishes), on an asyncio loop in a thread. It is
edge device (thing) ``local``, under the same identity rules as one in the field (``core/identity.py``): its
uplink hands each publish to the in-process ingest queue as the ingest rule would, naming thing ``local``
(``ingest_body``), and downlinks for the gateways ``local`` owns come back through ``LocalDownlink`` as one
delivery to ``mc/local/down``, which the agent routes to the gateway each downlink names.

With the local shadow service, the agent runs with ``cloud_config``: gateway resources with ``"edgeId":
"local"`` reach it through its shadow as they would reach a Raspberry Pi through AWS IoT Core, and it starts,
restarts and stops them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mycontroller_protocol.envelope import Downlink, down_topic, encode_downlinks

from ..core.identity import LOCAL_EDGE, ingest_body

if TYPE_CHECKING:
    from ..adapters.shadow_local import LocalShadowStore
    from ..bootstrap import Container

log = logging.getLogger("mycontroller.local.gateways")

EDGE_ID = LOCAL_EDGE
"""The local stack's edge device: gateway resources with this ``edgeId`` run in its agent."""


class LocalGatewayHost:
    def __init__(self, gateways: list[dict[str, Any]], publish: Callable[[str], None], downlink: Any,
                 data_dir: Path, shadow: Any = None) -> None:
        """``publish`` takes ingest records (the ingest queue's ``send``); ``downlink`` is the ``LocalDownlink``."""
        from edge.agent import EdgeAgent  # the edge's runtime, imported only when the local stack runs it
        from edge.config import parse_config
        from edge.uplink.inprocess import InProcessUplink

        edge: dict[str, Any] = {"id": EDGE_ID, "data_dir": str(data_dir / "edge")}
        if shadow is not None:
            edge.update(cloud_config=True, shadow_name=shadow.shadow_name)
        config = parse_config({"edge": edge, "uplink": {"type": "inprocess"}, "gateways": gateways},
                              base_dir=data_dir, source="local stack gateways")

        def as_the_rule_does(body: bytes) -> None:  # what the IoT rule makes of a publish on mc/local/up
            publish(ingest_body(EDGE_ID, body))

        self.agent = EdgeAgent(config, publish_handler=as_the_rule_does)
        self.downlink = downlink
        self._routing = False
        uplink = self.agent.uplink
        if shadow is not None and isinstance(uplink, InProcessUplink):
            uplink.topic_handler = shadow.device_publish
            shadow.attach_device(EDGE_ID, lambda topic, payload: uplink.deliver_downlink(payload, topic))
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-edge-agent", daemon=True)

    @property
    def gateway_ids(self) -> list[str]:
        """The gateways the agent runs now (those of the file, and the cloud's of the moment)."""
        return sorted(list(self.agent.gateways))  # one C-level copy: the agent's thread may change the dict

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise RuntimeError("the local edge agent did not start")
        self.downlink.register(EDGE_ID, self._to_agent())
        self._routing = True
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
        if self._routing:
            self.downlink.unregister(EDGE_ID)
            self._routing = False
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)

    def _to_agent(self) -> Callable[[list[Downlink]], None]:
        """One publish to ``mc/local/down`` per delivery: the agent routes each downlink to its gateway."""
        from edge.uplink.inprocess import InProcessUplink

        uplink = self.agent.uplink
        if not isinstance(uplink, InProcessUplink):
            raise TypeError("the local stack runs the edge agent with the in-process uplink")
        topic = down_topic(EDGE_ID, self.agent.config.uplink.topic_prefix)

        def deliver(group: list[Downlink]) -> None:
            uplink.deliver_downlink(encode_downlinks(group), topic=topic)

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
