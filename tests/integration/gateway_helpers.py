"""Test helpers for the edge gateway plugins: a recording GatewayContext, bounded waits, a mosquitto broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import tty
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A private mosquitto on 127.0.0.1 that a test can stop and start again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.workdir}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


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
