"""Transports the gateway plugins share: serial and TCP line streams, and an MQTT client wrapped for asyncio.

The line transports connect once and fail loudly (``TransportClosed``) when the device goes away; the
gateway owns the reconnect loop because it also owns the state it reports to the cloud. The MQTT client
reconnects by itself (awscrt does it, with our backoff bounds) and reports every up/down transition.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import EdgeError

MAX_LINE = 4096
"""A line longer than this is junk (a MySensors line is under 60 bytes); it is dropped, not buffered forever."""


READ_INTERVAL_S = 0.04
"""Under steady traffic a serial port is read this often (``SerialLineTransport._pace``)."""
_TTY_BUFFER = 4095
"""What a tty holds for a reader (Linux's line discipline buffer, 4 KB less one byte): a read this long may have
left more behind."""


class TransportClosed(EdgeError, ConnectionError):
    """The device or server went away; the gateway reconnects."""


def _split_lines(buffer: bytearray, data: bytes) -> tuple[list[str], int]:
    """Append ``data`` and cut complete lines out of ``buffer``; returns the lines and bytes dropped as junk."""
    buffer.extend(data)
    end = buffer.rfind(b"\n")
    dropped = 0
    lines: list[str] = []
    if end >= 0:
        for raw in bytes(buffer[:end]).split(b"\n"):
            if len(raw) > MAX_LINE:
                dropped += len(raw)
            else:
                lines.append(raw.decode("utf-8", errors="replace").rstrip("\r"))
        del buffer[: end + 1]
    if len(buffer) > MAX_LINE:
        dropped += len(buffer)
        buffer.clear()
    return lines, dropped


class LineTransport:
    """A stream of text lines to and from one device, valid for one connection."""

    description = "line transport"
    dropped_bytes = 0
    read_delay_s = 0.0
    """How long a line may wait in the device's buffer before it is read (a node's listening window is counted
    from when it was written, not read)."""

    async def open(self) -> None:
        raise NotImplementedError

    async def read_line(self) -> str:
        raise NotImplementedError

    async def write_line(self, line: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SerialLineTransport(LineTransport):
    """A serial port through pyserial, read on the event loop.

    The loop watches the port's descriptor while it is open (no reader thread, no wakeup but when bytes arrive);
    a device that keeps sending is read every ``READ_INTERVAL_S`` instead (``_pace``). Each read is split into
    lines in one callback and the gateway takes them in the next step, so a device that never pauses cannot hold
    the loop and what the last read emitted is committed before the next read. Opening keeps what the device
    sent while the port was closed (pyserial would empty the input buffer): lines written while the agent
    restarts are read once it is back. Where the port has no descriptor (not POSIX), reads go through a worker
    thread.
    """

    read_delay_s = READ_INTERVAL_S  # under steady traffic (``_pace``)

    def __init__(self, portname: str, baud_rate: int = 115200, logger: logging.Logger | None = None) -> None:
        self.portname = portname
        self.baud_rate = baud_rate
        self.description = f"serial {portname} @ {baud_rate}"
        self.logger = logger or logging.getLogger(__name__)
        self._serial: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watching = False
        self._last_read = 0.0
        self._resume: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: TransportClosed | None = None
        self._buffer = bytearray()
        self._lines: collections.deque[str] = collections.deque()
        self._write_lock = asyncio.Lock()
        self.dropped_bytes = 0

    async def open(self) -> None:
        import serial  # pyserial; imported here so that hosts without serial gateways need not have it

        def _open() -> Any:
            port = serial.Serial(timeout=0.2, write_timeout=5)
            port.port, port.baudrate = self.portname, self.baud_rate
            # pyserial's open() flushes the input buffer: lines the device sent while we were away would be lost
            port._reset_input_buffer = lambda: None  # the one step of open() we do not want
            port.open()
            return port

        try:
            self._serial = await asyncio.to_thread(_open)
        except (OSError, serial.SerialException, ValueError) as error:
            raise TransportClosed(f"cannot open {self.portname}: {error}") from None
        try:
            self._fd = self._serial.fileno()
        except (AttributeError, OSError, NotImplementedError):
            self._fd = None
        self._loop = asyncio.get_running_loop()
        self._error = None
        self._buffer.clear()
        self._lines.clear()

    async def read_line(self) -> str:
        lines = self._lines
        while not lines:
            if self._fd is None:
                self._take(await self._read_in_thread())
            else:
                await self._readable()
        return lines.popleft()

    def _take(self, data: bytes) -> None:
        lines, dropped = _split_lines(self._buffer, data)
        if dropped:
            self.dropped_bytes += dropped
            self.logger.warning("dropped %d bytes of over-long line on %s", dropped, self.portname)
        self._lines.extend(lines)

    async def _readable(self) -> None:
        """Until ``_on_readable`` has lines (or the device is gone); the port stays watched between waits."""
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        if not self._watching and self._resume is None and self._fd is not None:
            loop.add_reader(self._fd, self._on_readable)
            self._watching = True
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None and not self._lines:
            raise self._error

    def _on_readable(self) -> None:
        """The port is readable (the loop watches it) or the polling timer fired (``_pace``): read what is there."""
        self._resume = None
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = None
        except OSError as error:  # EIO: unplugged (a pty whose other end closed)
            self._fail(TransportClosed(f"{self.portname}: {error}"))
            data = None
        else:
            if not data and self._watching:  # readable, yet nothing to read: hung up
                self._fail(TransportClosed(f"{self.portname}: the device reported data but had none (disconnected?)"))
        if data:
            self._take(data)
        if self._error is None:
            self._pace(len(data) if data else 0)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._lines or self._error is not None):
            waiter.set_result(None)

    def _pace(self, size: int) -> None:
        """A device that keeps sending is read every ``READ_INTERVAL_S`` by a timer, its bytes waiting in the tty
        meanwhile: the agent wakes a few dozen times a second for many lines each time, not for every few lines (a
        USB serial adapter's latency timer does the same; at 115200 baud that is some 460 bytes a read). Once a read
        finds nothing, the loop watches the port again, so a line after a pause is read at once; so it does after a
        read that filled the tty's buffer (a flood is read as fast as it comes) and after each write (``_answer_soon``).
        """
        loop = self._loop
        if loop is None or self._fd is None:
            return
        now = loop.time()
        read = size > 0
        busy = read and size < _TTY_BUFFER and now - self._last_read < READ_INTERVAL_S
        if read:
            self._last_read = now
        if read and size >= _TTY_BUFFER:
            read = False  # watch: the loop reads again as soon as it turns
        if busy or (read and not self._watching):  # poll
            if self._watching:
                loop.remove_reader(self._fd)
                self._watching = False
            self._resume = loop.call_later(READ_INTERVAL_S, self._on_readable)
        elif not self._watching:  # quiet again: watch
            loop.add_reader(self._fd, self._on_readable)
            self._watching = True

    def _fail(self, error: TransportClosed) -> None:
        self._error = error
        self._unwatch()

    def _unwatch(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._watching and self._loop is not None and self._fd is not None:
            with contextlib.suppress(Exception):  # the loop is closed already
                self._loop.remove_reader(self._fd)
        self._watching = False

    async def _read_in_thread(self) -> bytes:
        port = self._serial
        if port is None:
            raise TransportClosed(f"{self.portname} is not open")
        while True:
            try:
                data = await asyncio.to_thread(lambda: port.read(port.in_waiting or 1))
            except Exception as error:  # pyserial raises SerialException, OSError or TypeError on unplug
                raise TransportClosed(f"{self.portname}: {error}") from None
            if data:
                return bytes(data)

    async def write_line(self, line: str) -> None:
        port = self._serial
        if port is None:
            raise TransportClosed(f"{self.portname} is not open")
        data = (line + "\n").encode("utf-8")
        async with self._write_lock:
            try:
                await asyncio.to_thread(port.write, data)
            except Exception as error:
                raise TransportClosed(f"write to {self.portname} failed: {error}") from None
        self._answer_soon()

    def _answer_soon(self) -> None:
        """After a write the device's answer is read as soon as it comes, not at the next paced read: an exchange
        (a firmware block asked for and sent, a request answered, a command echoed) is never slowed down."""
        if self._resume is None or self._loop is None or self._fd is None or self._error is not None:
            return
        self._resume.cancel()
        self._resume = None
        self._loop.add_reader(self._fd, self._on_readable)
        self._watching = True

    async def close(self) -> None:
        self._unwatch()
        port, self._serial, self._fd = self._serial, None, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.cancel_read()
            with contextlib.suppress(Exception):
                port.close()


def parse_server(server: str, default_port: int) -> tuple[str, int]:
    """``tcp://host:port`` (or bare ``host[:port]``) → (host, port)."""
    text = server.strip()
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    if not parts.hostname:
        raise ValueError(f"no host in server address {server!r}")
    return parts.hostname, parts.port or default_port


class TcpLineTransport(LineTransport):
    """A TCP client to a MySensors ethernet gateway (default port 5003), with TCP keepalive.

    MySensors ethernet gateways can stay silent for hours; keepalive is what notices a peer that vanished
    without closing the connection (power cut, cable pulled).
    """

    def __init__(self, server: str, default_port: int = 5003, connect_timeout: float = 10.0,
                 logger: logging.Logger | None = None) -> None:
        self.host, self.port = parse_server(server, default_port)
        self.description = f"tcp {self.host}:{self.port}"
        self.connect_timeout = connect_timeout
        self.logger = logger or logging.getLogger(__name__)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._write_lock = asyncio.Lock()
        self.dropped_bytes = 0

    async def open(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_LINE + 2), self.connect_timeout)
        except (OSError, TimeoutError) as error:
            raise TransportClosed(f"cannot connect to {self.host}:{self.port}: {error or 'timeout'}") from None
        self._reader, self._writer = reader, writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            _enable_keepalive(sock)

    async def read_line(self) -> str:
        reader = self._reader
        if reader is None:
            raise TransportClosed(f"{self.description} is not open")
        while True:
            try:
                raw = await reader.readline()
            except ValueError:  # a line over the limit: the reader has thrown it away
                self.dropped_bytes += MAX_LINE
                self.logger.warning("dropped an over-long line from %s", self.description)
                continue
            except OSError as error:
                raise TransportClosed(f"{self.description}: {error}") from None
            if not raw:
                raise TransportClosed(f"{self.description} closed the connection")
            if not raw.endswith(b"\n") and reader.at_eof():
                raise TransportClosed(f"{self.description} closed the connection mid-line")
            return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def write_line(self, line: str) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise TransportClosed(f"{self.description} is not open")
        async with self._write_lock:
            try:
                writer.write((line + "\n").encode("utf-8"))
                await writer.drain()
            except OSError as error:
                raise TransportClosed(f"write to {self.description} failed: {error}") from None

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)


def _enable_keepalive(sock: socket.socket, idle: int = 30, interval: int = 10, count: int = 3) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval), ("TCP_KEEPCNT", count)):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


# --------------------------------------------------------------------------------------------- MQTT


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT wildcard match: ``+`` one level, ``#`` the rest (including the parent level itself)."""
    filter_parts = topic_filter.split("/")
    topic_parts = topic.split("/")
    for index, part in enumerate(filter_parts):
        if part == "#":
            return True
        if index >= len(topic_parts):
            return False
        if part != "+" and part != topic_parts[index]:
            return False
    return len(filter_parts) == len(topic_parts)


def split_topics(value: Any) -> list[str]:
    """A subscription setting as the reference writes it: one topic, comma-separated topics, or a list."""
    if not value:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _broker_endpoint(broker: str) -> tuple[str, int, bool]:
    """``tcp://host:1883`` / ``ssl://host:8883`` → (host, port, tls)."""
    parts = urlsplit(broker if "://" in broker else "tcp://" + broker)
    scheme = parts.scheme.lower()
    if scheme in ("tcp", "mqtt"):
        tls = False
    elif scheme in ("ssl", "tls", "mqtts"):
        tls = True
    else:
        raise ValueError(f"broker scheme {scheme!r} is not supported (tcp, mqtt, ssl, tls, mqtts)")
    if not parts.hostname:
        raise ValueError(f"no host in broker address {broker!r}")
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


@dataclass(slots=True)
class MqttSettings:
    """The reference's MQTT protocol block: ``broker, username, password, subscribe, publish, qos, insecure``."""

    broker: str
    subscriptions: list[str]
    publish: str = ""
    qos: int = 0
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    insecure: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keep_alive: int = 30

    @classmethod
    def from_protocol(cls, protocol: dict[str, Any], gateway_id: str, default_subscribe: Sequence[str] = ()
                      ) -> MqttSettings:
        broker = str(protocol.get("broker") or "tcp://127.0.0.1:1883")
        subscriptions = split_topics(protocol.get("subscribe")) or list(default_subscribe)
        qos = int(protocol.get("qos") or 0)
        _broker_endpoint(broker)  # a broker address that cannot work fails the gateway's build, not its run
        return cls(
            broker=broker,
            subscriptions=subscriptions,
            publish=str(protocol.get("publish") or ""),
            qos=min(max(qos, 0), 1),  # awscrt's MQTT5 client speaks QoS 0 and 1
            username=protocol.get("username") or None,
            password=protocol.get("password") or None,
            client_id=str(protocol.get("clientId") or f"mc-{gateway_id}-{uuid.uuid4().hex[:8]}"),
            insecure=bool(protocol.get("insecure", False)),
            ca_file=protocol.get("caFile") or protocol.get("ca") or None,
            cert_file=protocol.get("certFile") or None,
            key_file=protocol.get("keyFile") or None,
            keep_alive=int(protocol.get("keepAlive") or 30),
        )


class MqttTransport:
    """awscrt's MQTT 5 client, made to feel like asyncio.

    Incoming publishes and connection events arrive on CRT threads and are handed to the event loop. The
    client reconnects on its own (backoff from 250 ms up to ``reconnect_cap``) and we subscribe again after
    every connect, because a restarted broker without persistence has forgotten our subscriptions.
    ``on_state(up, message)`` is called, on the loop, at every up/down transition.
    """

    def __init__(self, settings: MqttSettings, *, reconnect_cap: float = 15.0,
                 on_state: Callable[[bool, str], None] | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.settings = settings
        self.reconnect_cap = reconnect_cap
        self.on_state = on_state
        self.logger = logger or logging.getLogger(__name__)
        self.connected = False
        self.connects = 0
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._messages: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._stopped: asyncio.Event | None = None
        self._reported: bool | None = None
        self._connected_event: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def description(self) -> str:
        return f"mqtt {self.settings.broker}"

    def _tls_context(self) -> Any:
        from awscrt import io

        s = self.settings
        if s.cert_file and s.key_file:
            options = io.TlsContextOptions.create_client_with_mtls_from_path(s.cert_file, s.key_file)
        else:
            options = io.TlsContextOptions()
        if s.ca_file:
            options.override_default_trust_store_from_path(None, s.ca_file)
        options.verify_peer = not s.insecure
        return io.ClientTlsContext(options)

    async def start(self) -> None:
        """Start connecting; returns at once (the connection comes and goes on its own)."""
        from awscrt import mqtt5

        host, port, tls = _broker_endpoint(self.settings.broker)
        self._loop = asyncio.get_running_loop()
        self._messages = asyncio.Queue()
        self._stopped = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._stopping = False
        self._reported = None
        s = self.settings
        options = mqtt5.ClientOptions(
            host_name=host,
            port=port,
            tls_ctx=self._tls_context() if tls else None,
            connect_options=mqtt5.ConnectPacket(client_id=s.client_id, keep_alive_interval_sec=s.keep_alive,
                                                username=s.username, password=s.password),
            session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
            min_reconnect_delay_ms=250,
            max_reconnect_delay_ms=max(int(self.reconnect_cap * 1000), 250),
            min_connected_time_to_reset_reconnect_delay_ms=10_000,
            connack_timeout_ms=10_000,
            ping_timeout_ms=5_000,
            on_publish_callback_fn=self._on_publish,
            on_lifecycle_event_connection_success_fn=self._on_success,
            on_lifecycle_event_connection_failure_fn=self._on_failure,
            on_lifecycle_event_disconnection_fn=self._on_disconnect,
            on_lifecycle_event_stopped_fn=self._on_stopped,
            disable_metrics=True,
        )
        self._client = mqtt5.Client(options)
        self._client.start()

    # CRT threads → loop
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _on_publish(self, data: Any) -> None:
        packet = data.publish_packet
        payload = packet.payload if isinstance(packet.payload, bytes) else bytes(packet.payload or b"")
        self._call(self._messages.put_nowait, (packet.topic, payload))

    def _on_success(self, data: Any) -> None:
        self._call(self._connected)

    def _peer(self) -> Any:
        from ..mqtt_errors import Peer

        s = self.settings
        return Peer(s.broker, _broker_endpoint(s.broker)[2], cert=s.cert_file if s.key_file else None, ca=s.ca_file,
                    client_id=s.client_id, username=s.username, setting="provider.protocol")

    def _on_failure(self, data: Any) -> None:
        from ..mqtt_errors import explain_connect_failure

        reason = explain_connect_failure(data.exception, getattr(data, "connack_packet", None), self._peer())
        self._call(self._transition, False, reason)

    def _on_disconnect(self, data: Any) -> None:
        from ..mqtt_errors import explain_disconnect

        reason = explain_disconnect(data.exception, getattr(data, "disconnect_packet", None), self._peer())
        self._call(self._transition, False, reason)

    def _on_stopped(self, data: Any) -> None:
        if self._stopped is not None:
            self._call(self._stopped.set)

    # on the loop
    def _connected(self) -> None:
        self.connects += 1
        task = asyncio.ensure_future(self._subscribe_then_up())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe_then_up(self) -> None:
        from awscrt import mqtt5

        if self.settings.subscriptions:
            packet = mqtt5.SubscribePacket(subscriptions=[
                mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS(self.settings.qos))
                for topic in self.settings.subscriptions])
            try:
                await asyncio.wait_for(asyncio.wrap_future(self._client.subscribe(packet)), 10)
            except Exception as error:  # the connection dropped again; the next connect subscribes again
                self.logger.warning("subscribe to %s failed: %s", self.settings.subscriptions, error)
                return
        self._transition(True, f"connected to {self.settings.broker}")

    def _transition(self, up: bool, message: str) -> None:
        if self._stopping:
            self.connected = False
            return
        self.connected = up
        if self._connected_event is not None:
            if up:
                self._connected_event.set()
            else:
                self._connected_event.clear()
        if self._reported == up:
            self.logger.debug("%s", message)
            return
        self._reported = up
        (self.logger.info if up else self.logger.warning)("%s", message)
        if self.on_state is not None:
            self.on_state(up, message)

    async def wait_connected(self, timeout: float | None = None) -> bool:
        if self._connected_event is None:
            return False
        try:
            await asyncio.wait_for(self._connected_event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def get(self) -> tuple[str, bytes]:
        """The next (topic, payload) received."""
        return await self._messages.get()

    async def publish(self, topic: str, payload: str | bytes, qos: int | None = None, retain: bool = False) -> None:
        """Publish; raises ``TransportClosed`` when the broker is not reachable (QoS 0 is not queued offline)."""
        from awscrt import mqtt5

        if self._client is None or not self.connected:
            raise TransportClosed(f"not connected to {self.settings.broker}")
        level = self.settings.qos if qos is None else qos
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(level), retain=retain)
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._client.publish(packet)), 10)
        except Exception as error:
            raise TransportClosed(f"publish to {topic} failed: {error}") from None

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._stopping = True
        self.connected = False
        client.stop()
        if self._stopped is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), 5)
        self.connected = False
