"""MySensors 2.x gateways over serial, ethernet (TCP) and MQTT.

Every message a MySensors gateway hands us is emitted in the serial line form, whatever the transport, so
the cloud has one decoder. The edge answers at once what needs no cloud state (I_TIME, I_CONFIG: a node
waits only a moment for them) and holds commands for smart-sleep nodes until they show they are awake,
because their listening window (hundreds of milliseconds) is shorter than a round trip to the cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.codec import (
    CodecError,
    MySensorsMessage,
    decode_line,
    decode_mqtt,
    encode_line,
    encode_mqtt,
)
from mycontroller_protocol.mysensors.control import CONTROL_OTA, CONTROL_SLEEP, read_control
from mycontroller_protocol.mysensors.protocol import Command, Internal

from ..base import Gateway, GatewayContext
from ..transport import (
    LineTransport,
    MqttSettings,
    MqttTransport,
    SerialLineTransport,
    TcpLineTransport,
    TransportClosed,
    parse_server,
)
from ..util import Backoff, data_dir, parse_duration, reconnect_delay
from .ota import ST_REQUEST, OtaServer
from .sleep_queue import DEFAULT_LIMIT, DEFAULT_VALIDITY_MS, SleepQueue

PROVIDER = "mysensors_v2"
BROADCAST = 255
_SET = int(Command.SET)
_INTERNAL = int(Command.INTERNAL)
_STREAM = int(Command.STREAM)
_I_TIME = int(Internal.I_TIME)
_I_CONFIG = int(Internal.I_CONFIG)
_I_PRE_SLEEP = int(Internal.I_PRE_SLEEP_NOTIFICATION)
_I_POST_SLEEP = int(Internal.I_POST_SLEEP_NOTIFICATION)
_I_REBOOT = int(Internal.I_REBOOT)
_PRESENTATION = int(Command.PRESENTATION)
MAX_RETRIES = 10
"""The most ``retryCount`` may ask: an ack that does not come after that many tries will not come."""
_AWAKE_SIGNALS = frozenset({int(Internal.I_HEARTBEAT_RESPONSE), int(Internal.I_DISCOVER_RESPONSE), _I_POST_SLEEP})
_TELEMETRY_INTERNALS = frozenset(int(t) for t in (
    Internal.I_LOG_MESSAGE, Internal.I_DEBUG, Internal.I_BATTERY_LEVEL, Internal.I_HEARTBEAT_RESPONSE,
    Internal.I_SIGNAL_REPORT_RESPONSE))
_STABLE_CONNECTION = 5.0
"""A connection that lasted this long resets the reconnect backoff."""
_LOG_FIRST_INVALID = 10


def as_line(msg: MySensorsMessage) -> str:
    """The line form without its newline: what is emitted to the cloud and what transports frame."""
    return encode_line(msg).rstrip("\n")


def is_command(msg: MySensorsMessage) -> bool:
    """Whether the spool must keep this message when full: everything but plain telemetry.

    Presentations, requests, node facts and the echo confirming a command we sent are not re-sent by a node;
    readings, battery levels, heartbeats and log lines are, or are superseded by the next one.
    """
    if msg.ack:
        return True
    if msg.command == _SET or msg.command == _STREAM:
        return False
    return not (msg.command == _INTERNAL and msg.type in _TELEMETRY_INTERNALS)


def local_epoch_seconds(zone_name: str | None, now: float | None = None) -> int:
    """Unix seconds plus the zone's UTC offset: MySensors nodes keep wall-clock time and know no zones."""
    now = time.time() if now is None else now
    if not zone_name:
        return int(now)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return int(now)
    offset = datetime.fromtimestamp(now, UTC).astimezone(zone).utcoffset()
    return int(now) + (int(offset.total_seconds()) if offset else 0)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class MySensorsGateway(Gateway):
    """What every MySensors transport shares: local answers, smart-sleep queueing, acks, counters."""

    provider: ClassVar[str] = PROVIDER
    protocol_type: ClassVar[str] = ""

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.gateway_id = gateway_id
        self.config = config
        self.ctx = ctx
        provider = config.get("provider") or {}
        self.provider_config: dict[str, Any] = provider
        self.protocol: dict[str, Any] = provider.get("protocol") or {}
        self.logger: logging.Logger = ctx.logger
        self.reconnect_cap = reconnect_delay(config)
        self.transmit_pre_delay = parse_duration(self.protocol.get("transmitPreDelay"), 0.0)
        self.timezone: str | None = provider.get("timezone") or None
        unit_system = str(provider.get("unitSystem") or provider.get("unitsConfig") or "metric").lower()
        self.unit_answer = "I" if unit_system in ("imperial", "i") else "M"
        self.internal_ack = _as_bool(provider.get("enableInternalMessageAck", False))
        self.stream_ack = _as_bool(provider.get("enableStreamMessageAck", False))
        self.retry_count = min(MAX_RETRIES, max(0, int(provider.get("retryCount", 3) or 0)))
        self.ack_timeout = max(0.01, parse_duration(provider.get("timeout"), 0.2))
        self.queue_failed = _as_bool(config.get("queueFailedMessage", False))
        validity = parse_duration(provider.get("sleepMessageValidity") or provider.get("sleep_message_validity"),
                                  DEFAULT_VALIDITY_MS / 1000)
        limit = int(provider.get("sleepQueueLimit") or DEFAULT_LIMIT)
        self.awake_grace = parse_duration(provider.get("awakeDuration"), 1.0)
        gateway_dir = data_dir(gateway_id, config, ctx)
        self.sleep_queue = SleepQueue(gateway_dir / "sleep_queue.sqlite", limit=limit,
                                      validity_ms=int(validity * 1000), logger=self.logger)
        self.sleep_nodes: set[str] = self.sleep_queue.sleeping_nodes()
        """Nodes seen sleeping since they last presented themselves."""
        self.pinned_sleep: dict[str, bool] = self.sleep_queue.pinned_modes()
        """Sleep modes set from the nodes' labels (``ignore_sleep_node``): these win over what a node shows."""
        self.ota = OtaServer(gateway_dir, report=self._report, reboot=self._reboot_node, logger=self.logger)
        self._ota_started = False
        self.awake_until: dict[str, float] = {}
        self.connected = False
        self.state_message = ""
        self.counters: dict[str, int] = {
            "received": 0, "invalid": 0, "written": 0, "write_failures": 0, "answered_locally": 0,
            "queued_for_sleep": 0, "flushed": 0, "ack_timeouts": 0, "ack_failures": 0,
        }
        self._write_lock = asyncio.Lock()
        self._acks: dict[tuple[int, int, int, int], asyncio.Future[None]] = {}
        self._ack_waits: dict[tuple[int, int, int, int], asyncio.Task[bool]] = {}
        self._unanswered: set[str] = set()
        """Nodes whose last ack never came: their next commands get one try until they are heard again."""
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_state: tuple[str, str] | None = None

    # ------------------------------------------------------------------ transport hooks

    async def _write_message(self, msg: MySensorsMessage) -> None:
        """Put one message on the wire; raises ``TransportClosed`` when the device is gone."""
        raise NotImplementedError

    def description(self) -> str:
        return self.protocol_type

    # ------------------------------------------------------------------ state

    def _set_state(self, status: str, message: str) -> None:
        """Tell the cloud, once per change: a device that stays away does not cost a publish per retry."""
        if self._last_state == (status, message) or (status == "down" and self._last_state
                                                       and self._last_state[0] == "down"):
            return
        self._last_state = (status, message)
        self.state_message = message
        self.ctx.set_state(status, message)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _cancel_tasks(self) -> None:
        if self._ota_started:
            self._ota_started = False
            await self.ota.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _start_ota(self) -> None:
        if not self._ota_started:
            self._ota_started = True
            self.ota.start()

    def _on_connected(self) -> None:
        self.connected = True
        self._set_state("up", f"connected: {self.description()}")
        self._start_ota()
        self.ota.connected()
        if self.queue_failed:
            for node in self.sleep_queue.depth():
                if not self._is_sleeper(node):
                    self._start_flush(node)

    def _on_disconnected(self, message: str) -> None:
        self.connected = False
        for future in self._acks.values():
            if not future.done():
                future.set_exception(TransportClosed(message))
        self._acks.clear()
        self._set_state("down", message)

    # ------------------------------------------------------------------ uplink

    def handle_line(self, line: str) -> MySensorsMessage | None:
        """One line from the gateway: check, emit, and start whatever the edge answers itself."""
        line = line.strip()
        if not line:
            return None
        try:
            msg = decode_line(line)
        except CodecError as error:
            self.counters["invalid"] += 1
            if self.counters["invalid"] <= _LOG_FIRST_INVALID or self.counters["invalid"] % 100 == 0:
                self.logger.warning("%s: ignored invalid MySensors line %r (%s); %d so far",
                                    self.gateway_id, line[:120], error, self.counters["invalid"])
            return None
        self.counters["received"] += 1
        if msg.command == _STREAM and self._serve_stream(msg):
            return msg  # a firmware block answered here: the cloud hears of it in the update's progress reports
        self.ctx.emit(line, command=is_command(msg))
        self._react(msg)
        return msg

    def _react(self, msg: MySensorsMessage) -> None:
        if msg.ack:
            key = (msg.node_id, msg.child_id, msg.command, msg.type)
            future = self._acks.get(key)
            if future is not None and not future.done():
                future.set_result(None)
            return  # an echo of something we sent: nothing to answer
        if self._unanswered:
            self._unanswered.discard(str(msg.node_id))  # heard from: its commands are retried again
        command = msg.command
        if command == _SET or msg.node_id == BROADCAST:  # the most of the traffic: nothing to do
            return
        node = str(msg.node_id)
        if command == _PRESENTATION:
            if msg.child_id == BROADCAST:
                self._presented(node)
        elif command != _INTERNAL:
            return
        elif msg.type == _I_TIME:
            self._answer(msg, str(local_epoch_seconds(self.timezone)))
        elif msg.type == _I_CONFIG:
            self._answer(msg, self.unit_answer)
        elif msg.type == _I_PRE_SLEEP or msg.type in _AWAKE_SIGNALS:
            self._sleep_signal(node, msg.type, msg.payload)

    def read_delay_s(self) -> float:
        """How long a line from the device may have waited before it was read (its transport's)."""
        return 0.0

    def _sleep_signal(self, node: str, type_id: int, payload: str) -> None:
        """A node says it is about to sleep (with its listening window) or that it is awake: send what waits."""
        if type_id == _I_PRE_SLEEP:
            self._note_sleep_node(node)
            window = int(payload) / 1000 if payload.strip().isdigit() else 0.0
            # counted from when the node said it: the line may have waited in the device's buffer meanwhile
            self.awake_until[node] = time.monotonic() + max(0.0, window - self.read_delay_s())
        else:
            if type_id == _I_POST_SLEEP:
                self._note_sleep_node(node)
            # awake now, for a while we cannot know; the next pre-sleep notice gives the exact window
            self.awake_until[node] = max(self.awake_until.get(node, 0.0), time.monotonic() + self.awake_grace)
        self._start_flush(node)

    def _presented(self, node: str) -> None:
        """A node presents itself (it has just started): it listens now, and it is a smart-sleep node again only
        once it says so, so a sketch re-flashed to stay awake gets its commands at once."""
        self.awake_until[node] = max(self.awake_until.get(node, 0.0), time.monotonic() + self.awake_grace)
        if node in self.sleep_nodes:
            self._forget_sleep_node(node)
            if node not in self.pinned_sleep:
                self.logger.info("%s: node %s presented itself again: its commands go at once until it says it "
                                 "sleeps", self.gateway_id, node)
        self._start_flush(node)

    def _serve_stream(self, msg: MySensorsMessage) -> bool:
        """Answer a firmware request of a node the edge updates; whether the message stays here (block requests:
        thousands a firmware, told upstream as progress)."""
        if msg.ack or msg.node_id == BROADCAST:
            return False
        answer = self.ota.handle(str(msg.node_id), msg.type, msg.payload)
        if answer is None:
            return False
        self.counters["answered_locally"] += 1
        reply = MySensorsMessage(msg.node_id, msg.child_id, _STREAM, False, msg.type + 1, answer)
        self._spawn(self._deliver_quietly(reply))
        return msg.type == ST_REQUEST

    def _report(self, data: dict[str, Any]) -> None:
        """What the edge itself says about a node (an update's progress), read by the cloud's MySensors provider."""
        self.ctx.emit(json.dumps(data, separators=(",", ":")), command=True)

    async def _reboot_node(self, node: str) -> bool:
        """Reboot a node through the usual path (held for a sleeping node until it wakes); False when the device
        is away (the OTA server tries again once it is back)."""
        line = f"{node};{BROADCAST};{_INTERNAL};0;{_I_REBOOT};"
        try:
            await self.send(Downlink(self.gateway_id, PROVIDER, line, node_id=node, key=f"{node};255;{_I_REBOOT}"))
        except TransportClosed as error:
            self.logger.warning("%s: node %s is rebooted for its firmware update once the gateway is back (%s)",
                                self.gateway_id, node, error)
            return False
        return True

    def _answer(self, request: MySensorsMessage, payload: str) -> None:
        answer = MySensorsMessage(request.node_id, request.child_id, _INTERNAL, False, request.type, payload)
        self.counters["answered_locally"] += 1
        self._spawn(self._deliver_quietly(answer))

    async def _deliver_quietly(self, msg: MySensorsMessage) -> None:
        try:
            await self._deliver(msg)
        except TransportClosed as error:
            self.logger.warning("%s: could not answer node %s: %s", self.gateway_id, msg.node_id, error)

    def _note_sleep_node(self, node: str) -> None:
        if node not in self.sleep_nodes:
            self.sleep_nodes.add(node)
            self.sleep_queue.mark_sleeping_node(node)
            if node not in self.pinned_sleep:
                self.logger.info("%s: node %s is a smart-sleep node; its commands wait for it to wake",
                                 self.gateway_id, node)

    def _forget_sleep_node(self, node: str) -> None:
        self.sleep_nodes.discard(node)
        self.sleep_queue.forget_sleeping_node(node)

    def _is_sleeper(self, node: str) -> bool:
        pinned = self.pinned_sleep.get(node)
        return pinned if pinned is not None else node in self.sleep_nodes

    def _is_awake(self, node: str) -> bool:
        return not self._is_sleeper(node) or time.monotonic() < self.awake_until.get(node, 0.0)

    def _control(self, raw: str) -> None:
        """A control downlink for the gateway itself (``mycontroller_protocol/mysensors/control.py``)."""
        try:
            data = read_control(raw) or {}
            if data.get("ctl") == CONTROL_OTA:
                self._start_ota()
                self.ota.control(data)
            elif data.get("ctl") == CONTROL_SLEEP:
                self._set_sleep_mode(data["node"], data.get("sleep"), bool(data.get("pinned")))
            else:
                raise ValueError(f"unknown control {data.get('ctl')!r}")
        except ValueError as error:
            self.counters["write_failures"] += 1
            self.logger.warning("%s: refused control downlink %r: %s", self.gateway_id, raw[:200], error)

    def _set_sleep_mode(self, node: str, sleep: Any, pinned: bool) -> None:
        """From the node's labels: ``sleep_node`` (``sleep``), pinned with ``ignore_sleep_node``."""
        if pinned and isinstance(sleep, bool):
            self.pinned_sleep[node] = sleep
            self.sleep_queue.pin_sleep_mode(node, sleep)
        else:
            self.pinned_sleep.pop(node, None)
            self.sleep_queue.pin_sleep_mode(node, None)
            if sleep is True:
                self._note_sleep_node(node)
            elif sleep is False:
                self._forget_sleep_node(node)
        self.logger.info("%s: node %s is %s%s", self.gateway_id, node,
                         "a smart-sleep node" if self._is_sleeper(node) else "always on",
                         " (pinned by its labels)" if node in self.pinned_sleep else "")
        if not self._is_sleeper(node):
            self._start_flush(node)  # what waited for it goes now

    # ------------------------------------------------------------------ downlink

    async def send(self, downlink: Downlink) -> None:
        """Write a command now, or hold it for a sleeping node. A line that does not decode is refused; a control
        downlink is for the gateway itself."""
        if downlink.raw.startswith("{"):
            self._control(downlink.raw)
            return
        try:
            msg = decode_line(downlink.raw.strip())
        except CodecError as error:
            self.counters["write_failures"] += 1
            self.logger.warning("%s: refused downlink %r: %s", self.gateway_id, downlink.raw, error)
            return
        node = downlink.node_id or str(msg.node_id)
        if msg.node_id != BROADCAST and not self._is_awake(node):
            self._enqueue(downlink, node)
            return
        try:
            await self._deliver(msg)
        except TransportClosed:
            if self.queue_failed and msg.node_id != BROADCAST:
                self._enqueue(downlink, node)
                return
            raise

    def _enqueue(self, downlink: Downlink, node: str) -> None:
        if downlink.node_id != node:
            downlink = Downlink(downlink.gateway_id, downlink.provider, downlink.raw, node, downlink.key,
                                downlink.topic, downlink.expires_ms)
        self.sleep_queue.put(downlink)
        self.counters["queued_for_sleep"] += 1
        self.logger.debug("%s: queued for node %s: %s", self.gateway_id, node, downlink.raw)

    def _start_flush(self, node: str) -> None:
        running = self._flushing.get(node)
        if running is not None and not running.done():
            return
        if not self.sleep_queue.depth().get(node):
            return
        task = self._spawn(self._flush(node))
        self._flushing[node] = task

    async def _flush(self, node: str) -> None:
        """Send a node's queued commands, in order, while it listens; each leaves the queue once written."""
        for entry in self.sleep_queue.pending(node):
            if not self._is_awake(node):
                self.logger.info("%s: node %s went back to sleep; the rest waits", self.gateway_id, node)
                return
            try:
                msg = decode_line(entry.downlink.raw.strip())
            except CodecError:
                self.sleep_queue.remove(entry.entry_id)
                continue
            try:
                await self._deliver(msg)
            except TransportClosed as error:
                self.logger.warning("%s: flush to node %s stopped: %s", self.gateway_id, node, error)
                return
            self.sleep_queue.remove(entry.entry_id)
            self.counters["flushed"] += 1

    def _ack_wanted(self, msg: MySensorsMessage) -> bool:
        if msg.node_id == BROADCAST:
            return False
        if msg.ack:
            return True
        return (msg.command == _INTERNAL and self.internal_ack) or (msg.command == _STREAM and self.stream_ack)

    async def _write(self, msg: MySensorsMessage) -> None:
        """One write, after ``transmitPreDelay``; writes never interleave. ``TransportClosed`` when gone."""
        async with self._write_lock:
            if self.transmit_pre_delay:
                await asyncio.sleep(self.transmit_pre_delay)
            try:
                await self._write_message(msg)
            except TransportClosed:
                self.counters["write_failures"] += 1
                raise
            self.counters["written"] += 1

    async def _deliver(self, msg: MySensorsMessage) -> None:
        """Write a message; when an ack is wanted, wait for its echo (and write again) in the background, so a
        node that does not answer holds up no other downlink. Raises ``TransportClosed`` when the device is gone.
        """
        if not self._ack_wanted(msg):
            await self._write(msg)
            return
        if not msg.ack:
            msg = MySensorsMessage(msg.node_id, msg.child_id, msg.command, True, msg.type, msg.payload)
        key = (msg.node_id, msg.child_id, msg.command, msg.type)
        previous = self._ack_waits.pop(key, None)
        if previous is not None:
            previous.cancel()  # a newer message for the same target: the older one's ack no longer matters
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[key] = future  # before writing: a quick echo must find it
        try:
            await self._write(msg)
        except TransportClosed:
            self._acks.pop(key, None)
            raise
        waiter = self._spawn(self._await_ack(msg, key, future))
        self._ack_waits[key] = waiter
        waiter.add_done_callback(lambda done: self._ack_waits.pop(key, None) if self._ack_waits.get(key) is done
                                 else None)

    async def _await_ack(self, msg: MySensorsMessage, key: tuple[int, int, int, int],
                         future: asyncio.Future[None]) -> bool:
        """Wait ``timeout`` for the echo, writing again up to ``retryCount`` times; a node whose last ack never
        came gets one try only, until it is heard from again. Whether the ack came."""
        node = str(msg.node_id)
        attempts = 1 if node in self._unanswered else 1 + self.retry_count
        try:
            for attempt in range(attempts):
                if attempt:
                    future = asyncio.get_running_loop().create_future()
                    self._acks[key] = future
                    await self._write(msg)
                try:
                    await asyncio.wait_for(asyncio.shield(future), self.ack_timeout)
                    self._unanswered.discard(node)
                    return True
                except TimeoutError:
                    self.counters["ack_timeouts"] += 1
        except TransportClosed:
            return False
        finally:
            if self._acks.get(key) is future:
                del self._acks[key]
        self.counters["ack_failures"] += 1
        self._unanswered.add(node)
        self.logger.warning("%s: no ack from node %s for %s after %d attempt(s)", self.gateway_id, msg.node_id,
                            as_line(msg), attempts)
        return False

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "protocol": self.protocol_type,
            "connected": self.connected,
            "transport": self.description(),
            "message": self.state_message,
            **self.counters,
            "sleep_nodes": sorted((n for n in self.sleep_nodes | set(self.pinned_sleep) if self._is_sleeper(n)),
                                  key=lambda n: (len(n), n)),
            "sleep_pinned": {n: self.pinned_sleep[n] for n in sorted(self.pinned_sleep, key=lambda n: (len(n), n))},
            "sleep_queue": self.sleep_queue.depth(),
            "ota": self.ota.status(),
        }


class MySensorsLineGateway(MySensorsGateway):
    """Serial or ethernet: a line stream that the gateway re-opens whenever it breaks."""

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.transport: LineTransport | None = None

    def make_transport(self) -> LineTransport:
        raise NotImplementedError

    def read_delay_s(self) -> float:
        return self.transport.read_delay_s if self.transport is not None else 0.0

    async def _write_message(self, msg: MySensorsMessage) -> None:
        transport = self.transport
        if transport is None:
            raise TransportClosed(f"{self.description()} is not connected")
        await transport.write_line(as_line(msg))

    async def run(self) -> None:
        backoff = Backoff(self.reconnect_cap)
        try:
            while True:
                transport = self.make_transport()
                try:
                    await transport.open()
                except TransportClosed as error:
                    self._on_disconnected(str(error))
                    await asyncio.sleep(backoff.next())
                    continue
                self.transport = transport
                opened = time.monotonic()
                self._on_connected()
                try:
                    while True:
                        self.handle_line(await transport.read_line())
                except TransportClosed as error:
                    self.transport = None
                    self._on_disconnected(str(error))
                finally:
                    self.transport = None
                    await transport.close()
                if time.monotonic() - opened >= _STABLE_CONNECTION:
                    backoff.reset()
                await asyncio.sleep(backoff.next())
        finally:
            await self._cancel_tasks()
            self.connected = False
            self._set_state("down", "gateway stopped")


class MySensorsSerialGateway(MySensorsLineGateway):
    protocol_type = "serial"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.portname = str(self.protocol.get("portname") or self.protocol.get("portName") or "/dev/ttyUSB0")
        self.baud_rate = int(self.protocol.get("baudRate") or self.protocol.get("baudrate") or 115200)

    def description(self) -> str:
        return f"serial {self.portname} @ {self.baud_rate}"

    def make_transport(self) -> LineTransport:
        return SerialLineTransport(self.portname, self.baud_rate, logger=self.logger)


class MySensorsEthernetGateway(MySensorsLineGateway):
    protocol_type = "ethernet"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.server = str(self.protocol.get("server") or "tcp://127.0.0.1:5003")
        self.host, self.port = parse_server(self.server, 5003)

    def description(self) -> str:
        return f"tcp {self.host}:{self.port}"

    def make_transport(self) -> LineTransport:
        return TcpLineTransport(self.server, 5003, logger=self.logger)


class MySensorsMqttGateway(MySensorsGateway):
    """A MySensors MQTT gateway: ``<out prefix>/node/child/cmd/ack/type`` in, ``<in prefix>/…`` out."""

    protocol_type = "mqtt"

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.settings = MqttSettings.from_protocol(self.protocol, gateway_id, ("mygateway1-out/#",))
        self.in_prefixes = [_prefix_of(topic) for topic in self.settings.subscriptions]
        self.publish_prefix = (self.settings.publish or "mygateway1-in").rstrip("/")
        self.mqtt: MqttTransport | None = None

    def description(self) -> str:
        return f"mqtt {self.settings.broker}"

    def _mqtt_state(self, up: bool, message: str) -> None:
        if up:
            self._on_connected()
        else:
            self._on_disconnected(message)

    async def _write_message(self, msg: MySensorsMessage) -> None:
        if self.mqtt is None:
            raise TransportClosed("not connected")
        topic, payload = encode_mqtt(msg, self.publish_prefix)
        await self.mqtt.publish(topic, payload)

    def handle_publish(self, topic: str, payload: bytes) -> MySensorsMessage | None:
        """One MQTT message → the serial line form, then as any other line."""
        prefix = next((p for p in self.in_prefixes if topic.startswith(p + "/")), None)
        if prefix is None:
            return None
        try:
            msg = decode_mqtt(topic, payload, prefix)
        except CodecError as error:
            self.counters["invalid"] += 1
            if self.counters["invalid"] <= _LOG_FIRST_INVALID or self.counters["invalid"] % 100 == 0:
                self.logger.warning("%s: ignored invalid MySensors MQTT message on %r (%s)", self.gateway_id,
                                    topic, error)
            return None
        return self.handle_line(as_line(msg))

    async def run(self) -> None:
        self.mqtt = MqttTransport(self.settings, reconnect_cap=self.reconnect_cap, on_state=self._mqtt_state,
                                  logger=self.logger)
        try:
            await self.mqtt.start()
            while True:
                topic, payload = await self.mqtt.get()
                self.handle_publish(topic, payload)
        finally:
            await self._cancel_tasks()
            await self.mqtt.stop()
            self.connected = False
            self._set_state("down", "gateway stopped")


def _prefix_of(topic_filter: str) -> str:
    """``mygateway1-out/#`` → ``mygateway1-out``."""
    parts = topic_filter.rstrip("/").split("/")
    while parts and parts[-1] in ("#", "+"):
        parts.pop()
    return "/".join(parts)
