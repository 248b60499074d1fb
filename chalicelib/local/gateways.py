"""Edge gateway plugins hosted inside the local stack: the in-process uplink and downlink.

The very plugins the edge agent runs (the simulator, MySensors serial/ethernet/MQTT, Tasmota, generic MQTT,
system monitor) run here on one asyncio loop in a thread. What they emit is wrapped in envelopes exactly as
the edge does (gateway, provider, edge timestamp, per-gateway sequence, unique message id), packed into
publishes by size and a short linger, and handed to the in-process ingest queue. Downlinks from the API and
the processor come back through ``LocalDownlink`` to the plugin's ``send``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..core.envelope import Downlink, Envelope, encode_publish

log = logging.getLogger("mycontroller.local.gateways")

MAX_PUBLISH_ENVELOPES = 200
LINGER_S = 0.05


def _report_send(gateway_id: str, raw: str, future: Future[None]) -> None:
    error = future.exception()
    if error is not None:
        log.error("gateway %s could not send %r: %s", gateway_id, raw, error)


class _Context:
    """What one gateway plugin sees of its host (``edge.gateways.base.GatewayContext``)."""

    def __init__(self, host: LocalGatewayHost, gateway_id: str, provider: str) -> None:
        self.host = host
        self.gateway_id = gateway_id
        self.provider = provider
        self._sequence = 0
        self._lock = threading.Lock()
        self.state: dict[str, str] = {"status": "unavailable", "message": ""}
        self._logger = logging.getLogger(f"mycontroller.gateway.{gateway_id}")

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def _envelope(self, provider: str, raw: str, topic: str | None) -> Envelope:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        return Envelope(self.gateway_id, provider, time.time_ns() // 1_000_000, sequence,
                        f"{self.host.boot_id}-{self.gateway_id}-{sequence}", raw, topic)

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None:
        self.host.enqueue(self._envelope(self.provider, raw, topic))

    def set_state(self, status: str, message: str = "") -> None:
        self.state = {"status": status, "message": message}
        raw = json.dumps({"type": "gateway_state", "status": status, "message": message})
        self.host.enqueue(self._envelope("edge", raw, None))


class LocalGatewayHost:
    def __init__(self, gateways: list[dict[str, Any]], publish: Callable[[str], None], downlink: Any) -> None:
        self.configs = [g for g in gateways if g.get("enabled", True)]
        self.publish = publish
        self.downlink = downlink
        self.boot_id = uuid.uuid4().hex[:12]
        self.gateways: dict[str, Any] = {}
        self.contexts: dict[str, _Context] = {}
        self._pending: list[Envelope] = []
        self._pending_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="local-gateways", daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        from edge.gateways import build_gateway  # the edge's plugins, imported only when gateways run here

        for config in self.configs:
            gateway_id = str(config["id"])
            provider = str((config.get("provider") or {}).get("type", ""))
            ctx = _Context(self, gateway_id, provider)
            gateway = build_gateway(gateway_id, config, ctx)
            ctx.provider = gateway.provider
            self.gateways[gateway_id] = gateway
            self.contexts[gateway_id] = ctx
        self._thread.start()
        for gateway_id, gateway in self.gateways.items():
            future = asyncio.run_coroutine_threadsafe(self._start_gateway(gateway), self._loop)
            future.result(timeout=10)
            self.downlink.register(gateway_id, self._downlink_callback(gateway_id))
        self._flusher = threading.Thread(target=self._flush_loop, name="local-uplink", daemon=True)
        self._flusher.start()
        log.info("gateways running: %s", ", ".join(self.gateways) or "none")

    async def _start_gateway(self, gateway: Any) -> None:
        self._tasks.append(asyncio.create_task(self._supervise(gateway)))

    async def _supervise(self, gateway: Any) -> None:
        """A plugin's ``run`` reconnects by itself; if it ever crashes, log it and start it again."""
        while True:
            try:
                await gateway.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway %s stopped with an error; restarting in 5 s", gateway.gateway_id)
                await asyncio.sleep(5)

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def stop(self) -> None:
        for gateway_id in self.gateways:
            self.downlink.unregister(gateway_id)

        async def cancel_all() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(timeout=10)
            except Exception:
                log.exception("stopping gateways")
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()

    # ----------------------------------------------------------------------------------------- uplink

    def enqueue(self, envelope: Envelope) -> None:
        with self._pending_lock:
            self._pending.append(envelope)
            full = len(self._pending) >= MAX_PUBLISH_ENVELOPES
        if full:
            self.flush()

    def flush(self) -> None:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        for start in range(0, len(batch), MAX_PUBLISH_ENVELOPES):
            self.publish(encode_publish(batch[start:start + MAX_PUBLISH_ENVELOPES]))

    def _flush_loop(self) -> None:
        while not self._stop.wait(LINGER_S):
            try:
                self.flush()
            except Exception:
                log.exception("handing envelopes to the ingest queue failed")

    # ----------------------------------------------------------------------------------------- downlink

    def _downlink_callback(self, gateway_id: str) -> Callable[[list[Downlink]], None]:
        def deliver(group: list[Downlink]) -> None:
            gateway = self.gateways[gateway_id]
            for downlink in group:
                future = asyncio.run_coroutine_threadsafe(gateway.send(downlink), self._loop)
                future.add_done_callback(functools.partial(_report_send, gateway_id, downlink.raw))

        return deliver

    def status(self) -> dict[str, Any]:
        return {gateway_id: {"state": ctx.state, **self.gateways[gateway_id].status()}
                for gateway_id, ctx in self.contexts.items()}
