"""Test helpers for the edge gateway plugins: a recording GatewayContext, bounded waits, an MQTT probe, the far
ends of a serial line (a pty) and of an ethernet gateway (a TCP server). The broker is ``edge_helpers.Broker``
(fixtures ``broker`` / ``volatile_broker`` in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import time
import tty
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from tests.integration.services import free_port


class FakeContext:
    """Records what a gateway emits and reports, as the edge runtime's context would take it (thread-safe)."""

    def __init__(self, gateway_id: str = "gw1", provider: str = "mysensors_v2", data_dir: Path | None = None) -> None:
        self.gateway_id = gateway_id
        self.provider = provider
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._emits: list[tuple[str, str | None, bool]] = []
        self._states: list[tuple[str, str]] = []
        self._logger = logging.getLogger(f"tests.gateway.{gateway_id}")

    def emit(self, raw: str, topic: str | None = None, *, command: bool = False) -> None:
        assert isinstance(raw, str), f"emitted raw must be text: {raw!r}"
        with self._lock:
            self._emits.append((raw, topic, command))

    def set_state(self, status: str, message: str = "") -> None:
        assert status in ("up", "down", "error"), status
        with self._lock:
            self._states.append((status, message))

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def emits(self) -> list[tuple[str, str | None, bool]]:
        with self._lock:
            return list(self._emits)

    @property
    def lines(self) -> list[str]:
        return [raw for raw, _topic, _command in self.emits]

    @property
    def states(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._states)

    @property
    def status(self) -> str | None:
        states = self.states
        return states[-1][0] if states else None


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy (returns it) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(gateway: Any) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``gateway.run()`` as a task for the duration of the block; cancel it and check it ends cleanly."""
    task = asyncio.ensure_future(gateway.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


class MqttProbe:
    """A second MQTT client for tests: publishes as a device would and records what reaches a topic filter."""

    def __init__(self, url: str, subscriptions: list[str]) -> None:
        from edge.gateways.transport import MqttSettings, MqttTransport

        settings = MqttSettings(broker=url, subscriptions=subscriptions, client_id=f"probe-{free_port()}")
        self.transport = MqttTransport(settings, reconnect_cap=1.0)
        self.received: list[tuple[str, bytes]] = []
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttProbe:
        await self.transport.start()
        assert await self.transport.wait_connected(10), "probe could not connect to mosquitto"
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        while True:
            self.received.append(await self.transport.get())

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.transport.stop()

    async def publish(self, topic: str, payload: str | bytes) -> None:
        await self.transport.publish(topic, payload)


class PtyDevice:
    """The far end of a serial line: a pty master, its slave reachable at a fixed symlink."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self._buffer = b""
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        temporary = self.link.with_suffix(".new")
        if os.path.lexists(temporary):
            os.unlink(temporary)
        os.symlink(os.ttyname(self.slave), temporary)
        os.replace(temporary, self.link)

    def unplug(self) -> None:
        # udev removes the symlink with the device; leaving it would let a pty opened elsewhere reuse the number
        if os.path.lexists(self.link):
            os.unlink(self.link)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = -1
        self._buffer = b""

    def write(self, data: str | bytes) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def poll_lines(self) -> list[str]:
        """Complete lines written by the gateway so far (non-blocking)."""
        while select.select([self.master], [], [], 0)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode() for line in lines]


class Received:
    """Accumulates what the device got, so waits can look at everything so far."""

    def __init__(self, device: PtyDevice) -> None:
        self.device = device
        self.lines: list[str] = []

    def __call__(self) -> list[str]:
        self.lines += self.device.poll_lines()
        return self.lines

    def having(self, predicate: Any) -> Any:
        return lambda: [line for line in self() if predicate(line)]


class FakeEthernetGateway:
    """A TCP server on 127.0.0.1 that records lines from the edge and lets the test talk back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[str] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0
        self.on_line: Any = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.drop_clients()

    def drop_clients(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                text = line.decode().rstrip("\n")
                self.received.append(text)
                if self.on_line is not None:
                    self.on_line(text, writer)

    async def say(self, *lines: str) -> None:
        writer = self.writers[-1]
        writer.write("".join(line + "\n" for line in lines).encode())
        await writer.drain()
