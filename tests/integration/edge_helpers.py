"""Real parts for the edge agent's tests and bench: a restartable mosquitto with persistent sessions, an MQTT
subscriber that collects what the agent publishes, a counting test gateway, and an agent subprocess.

This module is also a gateway plugin: importing it registers ``provider.type: test_counter``, a gateway that
emits the numbers 1..count at a steady rate and remembers how far it got, so that an agent SIGKILLed and
restarted carries on. ``python -m edge --plugin tests.integration.edge_helpers`` loads it into an agent.

``python -m tests.integration.edge_helpers spool-writer <path> <gateway>...`` appends to a spool forever and
prints every appended envelope after ``append`` returned: the SIGKILL durability test reads that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import yaml

from chalicelib.core.publish_reader import decode_publish
from edge.gateways.base import Gateway, GatewayContext, register_gateway
from mycontroller_protocol.envelope import Downlink, Envelope
from tests.integration.services import find_binary, free_port

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``condition`` until truthy (returns it); fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------- broker


class Broker:
    """A private mosquitto on 127.0.0.1 that keeps its port and, if ``persistent``, its sessions across restarts.

    Persistence matters for the fault test: a subscriber's session (and the QoS 1 messages queued for it while
    it was away) must survive the broker's restart, or messages the agent had delivered would vanish.
    """

    def __init__(self, workdir: Path, persistent: bool = True, acl: str | None = None,
                 listener: list[str] | None = None) -> None:
        self.binary = find_binary("mosquitto", "/usr/sbin/mosquitto")  # ServiceUnavailable if it is not installed
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # Started as root, mosquitto would switch to the "mosquitto" user, which cannot read or write our tmp dir.
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 0",
                 "max_inflight_messages 0", f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
        if persistent:
            lines += ["persistence true", f"persistence_location {workdir}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        lines += listener or []
        if acl is not None:
            (workdir / "acl").write_text(acl)
            lines.append(f"acl_file {workdir / 'acl'}")
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:<port>``, as a gateway's ``protocol.broker`` names it."""
        return f"tcp://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}; see {self.workdir}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its sessions and queued messages, then exits."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for localhost/127.0.0.1 and a client certificate (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = find_binary("openssl")  # ServiceUnavailable if it is not installed

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=edge-test-ca")
    (directory / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=edge-tls")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        extra = ["-extfile", "server.ext"] if name == "server" else []
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *extra)
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


# --------------------------------------------------------------------------------------------- subscriber


class Collector:
    """An MQTT 5 subscriber (awscrt) with a persistent session: records every publish on its topic filters."""

    def __init__(self, host: str, port: int, topics: list[str], client_id: str = "collector",
                 username: str | None = None) -> None:
        from awscrt import mqtt5

        self.mqtt5 = mqtt5
        self.topics = topics
        self._lock = threading.Lock()
        self._messages: list[tuple[str, bytes]] = []
        self._decoded: list[Envelope] = []
        self._decoded_messages = 0
        self._connected = threading.Event()
        self._stopped = threading.Event()
        self.client = mqtt5.Client(mqtt5.ClientOptions(
            host_name=host, port=port,
            connect_options=mqtt5.ConnectPacket(client_id=client_id, keep_alive_interval_sec=30,
                                                session_expiry_interval_sec=3600, username=username),
            session_behavior=mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS,
            min_reconnect_delay_ms=100, max_reconnect_delay_ms=500, disable_metrics=True,
            on_publish_callback_fn=self._on_publish,
            on_lifecycle_event_connection_success_fn=lambda _data: self._connected.set(),
            on_lifecycle_event_disconnection_fn=lambda _data: self._connected.clear(),
            on_lifecycle_event_stopped_fn=lambda _data: self._stopped.set()))

    def _on_publish(self, data: Any) -> None:
        packet = data.publish_packet
        with self._lock:
            self._messages.append((packet.topic, bytes(packet.payload)))

    def start(self, timeout: float = 10.0) -> Collector:
        mqtt5 = self.mqtt5
        self.client.start()
        if not self._connected.wait(timeout):
            raise AssertionError("collector could not connect to mosquitto")
        packet = mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS.AT_LEAST_ONCE) for topic in self.topics])
        self.client.subscribe(packet).result(timeout)
        return self

    def publish(self, topic: str, payload: str | bytes, timeout: float = 10.0) -> None:
        mqtt5 = self.mqtt5
        self.client.publish(mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS.AT_LEAST_ONCE)).result(
            timeout)

    def stop(self) -> None:
        self.client.stop()
        self._stopped.wait(5)

    @property
    def messages(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._messages)

    def envelopes(self) -> list[Envelope]:
        """Every envelope received, in order of arrival (duplicates included); decodes only what is new."""
        messages = self.messages
        for _topic, payload in messages[self._decoded_messages:]:
            good, bad = decode_publish(payload)
            assert not bad, f"undecodable envelopes in a publish: {bad}"
            self._decoded.extend(good)
        self._decoded_messages = len(messages)
        return list(self._decoded)


# --------------------------------------------------------------------------------------------- test gateway

COUNTER = "test_counter"


@register_gateway(COUNTER)
class CounterGateway(Gateway):
    """Emits ``count`` numbered messages at ``rate`` per second, resuming after a restart; records downlinks.

    Progress is written after every emit (no fsync: it only has to survive the process): a SIGKILL between an
    emit and its progress write makes the next agent emit that number once more, as a real device re-sending
    would. Downlinks it receives are appended to ``downlinks.txt`` in its data directory.
    """

    provider: ClassVar[str] = COUNTER

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        provider = config.get("provider") or {}
        self.count = int(provider.get("count", 100))
        self.rate = float(provider.get("rate", 1000))
        self.every_command = int(provider.get("commandEvery", 0))
        base = Path(provider.get("dataDir") or getattr(ctx, "data_dir", None) or ".") / gateway_id
        base.mkdir(parents=True, exist_ok=True)
        self.progress_path = base / "progress"
        self.downlink_path = base / "downlinks.txt"
        self.next = int(self.progress_path.read_text() or 0) + 1 if self.progress_path.exists() else 1

    async def run(self) -> None:
        self.ctx.set_state("up", f"counting from {self.next}")
        fd = os.open(self.progress_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            tick = 0.01
            per_tick = max(1, round(self.rate * tick))
            started, sent = time.monotonic(), 0
            while self.next <= self.count:
                for _ in range(min(per_tick, self.count - self.next + 1)):
                    command = bool(self.every_command) and self.next % self.every_command == 0
                    self.ctx.emit(str(self.next), command=command)
                    text = str(self.next).encode()
                    os.pwrite(fd, text.ljust(12), 0)
                    self.next += 1
                    sent += 1
                await asyncio.sleep(max(0.0, started + sent / self.rate - time.monotonic()))
            self.ctx.set_state("up", f"done: {self.count}")
            await asyncio.Event().wait()
        finally:
            os.close(fd)

    async def send(self, downlink: Downlink) -> None:
        with open(self.downlink_path, "a", encoding="utf-8") as out:
            out.write(downlink.raw + "\n")

    def status(self) -> dict[str, Any]:
        return {"next": self.next, "count": self.count}


def read_progress(data_dir: Path, gateway_id: str) -> int:
    path = data_dir / "gateways" / gateway_id / "progress"
    return int(path.read_text().strip() or 0) if path.exists() else 0


# --------------------------------------------------------------------------------------------- agent process


def write_config(path: Path, *, port: int, gateways: list[dict[str, Any]], edge_id: str = "edge-test",
                 **uplink: Any) -> Path:
    """An edge.yaml for a plain-MQTT uplink to 127.0.0.1:<port>, data under ``path.parent / "data"``."""
    config = {
        "edge": {"id": edge_id, "data_dir": "data", "status_interval_s": 0.5},
        "uplink": {"type": "mqtt", "host": "127.0.0.1", "port": port, "min_reconnect_delay_ms": 100,
                   "max_reconnect_delay_ms": 1000, **uplink},
        "gateways": gateways,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def counter_gateway(gateway_id: str, count: int, rate: float, **extra: Any) -> dict[str, Any]:
    return {"id": gateway_id, "provider": {"type": COUNTER, "count": count, "rate": rate, **extra}}


class AgentProcess:
    """``python -m edge --config <config>`` with this module as a plugin; its output goes to a log file."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "edge", "--config", str(self.config), "--plugin", "tests.integration.edge_helpers"],
                cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a power cut or the OOM killer would do it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        process, self.process = self.process, None
        if process is None:
            return 0
        if process.poll() is None:
            process.terminate()
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                raise AssertionError(f"agent did not stop on SIGTERM within {timeout}s; see {self.log}") from None
        return process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict[str, Any] | None:
        path = self.config.parent / "data" / "status.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None


# --------------------------------------------------------------------------------------------- spool writer


def _spool_writer(path: str, gateways: list[str]) -> None:
    """Append forever, round-robin over the gateways, every 7th a command; print each after it is durable."""
    from edge.spool import Spool

    spool = Spool(path)
    out = sys.stdout
    number = 0
    while True:
        for gateway_id in gateways:
            number += 1
            envelope = spool.append(gateway_id, "test", f"m{number}", command=number % 7 == 0)
            assert envelope is not None
            out.write(f"{envelope.gateway_id} {envelope.sequence} {envelope.message_id}\n")
            out.flush()


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "spool-writer":
        _spool_writer(sys.argv[2], sys.argv[3:])
    else:
        print(__doc__)
        sys.exit(2)
