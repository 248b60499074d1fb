"""A simulated MySensors gateway with a few nodes, for `make run`, demos and benchmarks.

It speaks exactly as a serial gateway would: the gateway's startup notice, each node's presentation (library
version, sketch name and version, one line per child), then periodic readings that drift like a room's air,
battery reports and heartbeats. It obeys commands: a switch or dimmer set through the API changes the
node's state and the node reports the new value back, as a real sketch does; requests, heartbeat requests,
re-presentation and discovery are answered. Seeded, so a test sees the same traffic every time.

Config: ``provider: {type: mysensors_v2, protocol: {type: simulator, nodes: 3, interval: "2s", seed: 1,
firstNodeId: 1, libraryVersion: "2.3.2", names: [...]}}``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.codec import CodecError, MySensorsMessage, decode_line, encode_line
from mycontroller_protocol.mysensors.protocol import Command, Internal, Sensor, Value

from .base import Gateway, GatewayContext
from .mysensors.gateway import is_command
from .util import parse_duration

PROVIDER = "mysensors_v2"
GATEWAY_NODE = 0
BROADCAST = 255
NODE_CHILD = 255

CHILD_TEMP, CHILD_HUM, CHILD_SWITCH, CHILD_DIMMER = 1, 2, 3, 4

_P, _S, _R, _I = int(Command.PRESENTATION), int(Command.SET), int(Command.REQ), int(Command.INTERNAL)
_V_TEMP, _V_HUM = int(Value.V_TEMP), int(Value.V_HUM)
_V_STATUS, _V_PERCENTAGE = int(Value.V_STATUS), int(Value.V_PERCENTAGE)

ROOMS: tuple[tuple[str, float, float], ...] = (
    # name, typical temperature °C, typical relative humidity %
    ("Living room", 21.5, 45.0),
    ("Kitchen", 22.5, 52.0),
    ("Bedroom", 19.5, 48.0),
    ("Office", 21.0, 41.0),
    ("Bathroom", 23.0, 62.0),
    ("Kids room", 20.5, 47.0),
    ("Hallway", 19.0, 44.0),
    ("Garage", 12.0, 58.0),
    ("Basement", 15.5, 66.0),
    ("Attic", 17.0, 38.0),
)
SWITCH_NAMES = ("Ceiling light", "Pendant light", "Wall light", "Floor lamp", "Mirror light")
DIMMER_NAMES = ("Table lamp", "Reading lamp", "LED strip", "Spot lights", "Night light")


@dataclass(slots=True)
class SimNode:
    """What one simulated node knows: its identity and the state a real sketch would keep."""

    node_id: int
    name: str
    sketch_version: str
    base_temp: float
    base_hum: float
    temperature: float
    humidity: float
    battery: int
    switch_name: str
    dimmer_name: str
    switch: int = 0
    dimmer_on: int = 0
    dimmer_level: int = 40
    uptime_ms: int = 0
    rssi: int = -60
    received: list[str] = field(default_factory=list)
    """Controller answers the node took in (I_TIME, I_CONFIG), newest last, for tests and curiosity."""


def _as_line(msg: MySensorsMessage) -> str:
    return encode_line(msg).rstrip("\n")


def _binary(payload: str) -> int:
    return 1 if payload.strip().lower() in ("1", "true", "on") else 0


def _percent(payload: str) -> int | None:
    try:
        return max(0, min(100, round(float(payload))))
    except ValueError:
        return None


class MySensorsSimulator(Gateway):
    provider: ClassVar[str] = PROVIDER

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        super().__init__(gateway_id, config, ctx)
        self.gateway_id = gateway_id
        self.config = config
        self.ctx = ctx
        self.logger: logging.Logger = ctx.logger
        protocol = (config.get("provider") or {}).get("protocol") or {}
        self.interval = max(0.001, parse_duration(protocol.get("interval"), 2.0))
        self.library_version = str(protocol.get("libraryVersion") or "2.3.2")
        seed = protocol.get("seed")
        self.rng = random.Random(seed)
        count = max(0, min(int(protocol.get("nodes", 3)), 254))
        first = int(protocol.get("firstNodeId", 1))
        names = list(protocol.get("names") or [])
        self.nodes: dict[int, SimNode] = {}
        for index in range(count):
            node_id = first + index
            room, temp, hum = ROOMS[index % len(ROOMS)]
            name = str(names[index]) if index < len(names) else (
                room if index < len(ROOMS) else f"{room} {index // len(ROOMS) + 1}")
            self.nodes[node_id] = SimNode(
                node_id=node_id,
                name=name,
                sketch_version=f"1.{self.rng.randint(0, 4)}",
                base_temp=temp,
                base_hum=hum,
                temperature=round(temp + self.rng.uniform(-0.8, 0.8), 1),
                humidity=round(hum + self.rng.uniform(-3, 3), 1),
                battery=self.rng.randint(78, 100),
                switch_name=SWITCH_NAMES[index % len(SWITCH_NAMES)],
                dimmer_name=DIMMER_NAMES[index % len(DIMMER_NAMES)],
                dimmer_level=self.rng.choice((20, 40, 60, 80)),
                uptime_ms=self.rng.randint(1_000, 5_000),
                rssi=self.rng.randint(-78, -45),
            )
        self.ticks = 0
        self.emitted = 0
        self.commands = 0
        self.running = False

    # ------------------------------------------------------------------ traffic, as lines

    @staticmethod
    def _line(node: int, child: int, command: int, type_id: int, payload: Any = "", ack: int = 0) -> str:
        return f"{node};{child};{command};{ack};{type_id};{payload}"

    def gateway_startup_lines(self) -> list[str]:
        return [
            self._line(GATEWAY_NODE, NODE_CHILD, _P, int(Sensor.S_ARDUINO_REPEATER_NODE), self.library_version),
            self._line(GATEWAY_NODE, NODE_CHILD, _I, int(Internal.I_GATEWAY_READY), "Gateway startup complete."),
        ]

    def presentation_lines(self, node: SimNode) -> list[str]:
        """What a MySensors 2.x sketch sends from ``presentation()`` after boot."""
        n = node.node_id
        return [
            self._line(n, NODE_CHILD, _P, int(Sensor.S_ARDUINO_NODE), self.library_version),
            self._line(n, NODE_CHILD, _I, int(Internal.I_CONFIG), "0"),
            self._line(n, NODE_CHILD, _I, int(Internal.I_SKETCH_NAME), node.name),
            self._line(n, NODE_CHILD, _I, int(Internal.I_SKETCH_VERSION), node.sketch_version),
            self._line(n, CHILD_TEMP, _P, int(Sensor.S_TEMP), "Temperature"),
            self._line(n, CHILD_HUM, _P, int(Sensor.S_HUM), "Humidity"),
            self._line(n, CHILD_SWITCH, _P, int(Sensor.S_BINARY), node.switch_name),
            self._line(n, CHILD_DIMMER, _P, int(Sensor.S_DIMMER), node.dimmer_name),
        ]

    def state_lines(self, node: SimNode) -> list[str]:
        """Every current value, as a sketch reports them once after presenting."""
        n = node.node_id
        return [
            self._line(n, CHILD_TEMP, _S, _V_TEMP, f"{node.temperature:.1f}"),
            self._line(n, CHILD_HUM, _S, _V_HUM, f"{node.humidity:.1f}"),
            self._line(n, CHILD_SWITCH, _S, _V_STATUS, node.switch),
            self._line(n, CHILD_DIMMER, _S, _V_STATUS, node.dimmer_on),
            self._line(n, CHILD_DIMMER, _S, _V_PERCENTAGE, node.dimmer_level),
            self._line(n, NODE_CHILD, _I, int(Internal.I_BATTERY_LEVEL), node.battery),
        ]

    def boot_lines(self, node: SimNode) -> list[str]:
        return self.presentation_lines(node) + self.state_lines(node)

    def startup_lines(self) -> list[str]:
        lines = self.gateway_startup_lines()
        for node in self.nodes.values():
            lines += self.boot_lines(node)
        return lines

    def node_tick_lines(self, node: SimNode) -> list[str]:
        """One interval of one node: readings that changed enough to report, now and then battery/heartbeat."""
        n = node.node_id
        lines: list[str] = []
        node.uptime_ms += int(self.interval * 1000)
        # a room's air drifts slowly and is pulled back towards its usual value
        temp = node.temperature + self.rng.gauss(0, 0.12) + (node.base_temp - node.temperature) * 0.05
        temp = round(min(max(temp, node.base_temp - 5), node.base_temp + 5), 1)
        if temp != node.temperature or self.ticks % 10 == 0:
            node.temperature = temp
            lines.append(self._line(n, CHILD_TEMP, _S, _V_TEMP, f"{temp:.1f}"))
        hum = node.humidity + self.rng.gauss(0, 0.5) + (node.base_hum - node.humidity) * 0.05
        hum = round(min(max(hum, 15.0), 95.0), 1)
        if abs(hum - node.humidity) >= 0.5 or self.ticks % 10 == 0:
            node.humidity = hum
            lines.append(self._line(n, CHILD_HUM, _S, _V_HUM, f"{hum:.1f}"))
        if self.rng.random() < 0.04:
            node.battery = max(5, node.battery - self.rng.choice((0, 1, 1, 2)))
            lines.append(self._line(n, NODE_CHILD, _I, int(Internal.I_BATTERY_LEVEL), node.battery))
        if self.rng.random() < 0.06:
            lines.append(self._line(n, NODE_CHILD, _I, int(Internal.I_HEARTBEAT_RESPONSE), node.uptime_ms))
        return lines

    def tick_lines(self) -> list[str]:
        self.ticks += 1
        lines: list[str] = []
        for node in self.nodes.values():
            lines += self.node_tick_lines(node)
        return lines

    # ------------------------------------------------------------------ commands

    def handle_command(self, raw: str) -> list[str]:
        """What the nodes say in answer to one line from the controller (possibly nothing)."""
        try:
            msg = decode_line(raw.strip())
        except CodecError as error:
            self.logger.warning("%s: simulator ignored an invalid command %r: %s", self.gateway_id, raw, error)
            return []
        self.commands += 1
        if msg.node_id == BROADCAST:
            if msg.command == _I and msg.type == Internal.I_DISCOVER_REQUEST:
                return [self._line(n, NODE_CHILD, _I, int(Internal.I_DISCOVER_RESPONSE), GATEWAY_NODE)
                        for n in self.nodes]
            return []
        if msg.node_id == GATEWAY_NODE:
            return self._gateway_command(msg)
        node = self.nodes.get(msg.node_id)
        if node is None:
            self.logger.info("%s: no simulated node %s for %r", self.gateway_id, msg.node_id, raw)
            return []
        echo = MySensorsMessage(msg.node_id, msg.child_id, msg.command, True, msg.type, msg.payload)
        lines = [_as_line(echo)] if msg.ack and msg.command in (_S, _R) else []
        if msg.command == _S:
            lines += self._set(node, msg)
        elif msg.command == _R:
            lines += self._request(node, msg)
        elif msg.command == _I:
            lines += self._internal(node, msg)
        return lines

    def _gateway_command(self, msg: MySensorsMessage) -> list[str]:
        if msg.command != _I:
            return []
        if msg.type == Internal.I_VERSION:
            return [self._line(GATEWAY_NODE, NODE_CHILD, _I, int(Internal.I_VERSION), self.library_version)]
        if msg.type == Internal.I_HEARTBEAT_REQUEST:
            return [self._line(GATEWAY_NODE, NODE_CHILD, _I, int(Internal.I_HEARTBEAT_RESPONSE), self.ticks)]
        if msg.type == Internal.I_DISCOVER_REQUEST:
            return [self._line(n, NODE_CHILD, _I, int(Internal.I_DISCOVER_RESPONSE), GATEWAY_NODE)
                    for n in self.nodes]
        return []

    def _set(self, node: SimNode, msg: MySensorsMessage) -> list[str]:
        n = node.node_id
        if msg.child_id == CHILD_SWITCH and msg.type == _V_STATUS:
            node.switch = _binary(msg.payload)
            return [self._line(n, CHILD_SWITCH, _S, _V_STATUS, node.switch)]
        if msg.child_id == CHILD_DIMMER and msg.type == _V_STATUS:
            node.dimmer_on = _binary(msg.payload)
            if node.dimmer_on and node.dimmer_level == 0:
                node.dimmer_level = 100
            return [self._line(n, CHILD_DIMMER, _S, _V_STATUS, node.dimmer_on),
                    self._line(n, CHILD_DIMMER, _S, _V_PERCENTAGE, node.dimmer_level)]
        if msg.child_id == CHILD_DIMMER and msg.type == _V_PERCENTAGE:
            level = _percent(msg.payload)
            if level is None:
                return []
            node.dimmer_level = level
            node.dimmer_on = 1 if level > 0 else 0
            return [self._line(n, CHILD_DIMMER, _S, _V_PERCENTAGE, node.dimmer_level),
                    self._line(n, CHILD_DIMMER, _S, _V_STATUS, node.dimmer_on)]
        return []  # sensors are read-only, like a real sketch that ignores what it does not handle

    def _request(self, node: SimNode, msg: MySensorsMessage) -> list[str]:
        values: dict[tuple[int, int], Any] = {
            (CHILD_TEMP, _V_TEMP): f"{node.temperature:.1f}",
            (CHILD_HUM, _V_HUM): f"{node.humidity:.1f}",
            (CHILD_SWITCH, _V_STATUS): node.switch,
            (CHILD_DIMMER, _V_STATUS): node.dimmer_on,
            (CHILD_DIMMER, _V_PERCENTAGE): node.dimmer_level,
        }
        value = values.get((msg.child_id, msg.type))
        if value is None:
            return []
        return [self._line(node.node_id, msg.child_id, _S, msg.type, value)]

    def _internal(self, node: SimNode, msg: MySensorsMessage) -> list[str]:
        n = node.node_id
        if msg.type == Internal.I_HEARTBEAT_REQUEST:
            return [self._line(n, NODE_CHILD, _I, int(Internal.I_HEARTBEAT_RESPONSE), node.uptime_ms)]
        if msg.type == Internal.I_PRESENTATION:
            return self.presentation_lines(node)
        if msg.type == Internal.I_REBOOT:
            node.uptime_ms = self.rng.randint(1_000, 3_000)
            return self.boot_lines(node)
        if msg.type == Internal.I_DISCOVER_REQUEST:
            return [self._line(n, NODE_CHILD, _I, int(Internal.I_DISCOVER_RESPONSE), GATEWAY_NODE)]
        if msg.type == Internal.I_SIGNAL_REPORT_REQUEST:
            node.rssi = max(-95, min(-30, node.rssi + self.rng.randint(-3, 3)))
            return [self._line(n, NODE_CHILD, _I, int(Internal.I_SIGNAL_REPORT_RESPONSE), node.rssi)]
        if msg.type in (Internal.I_TIME, Internal.I_CONFIG, Internal.I_ID_RESPONSE):
            node.received.append(_as_line(msg))
            del node.received[:-20]
        return []

    # ------------------------------------------------------------------ the Gateway interface

    def _emit(self, lines: list[str]) -> None:
        for line in lines:
            self.ctx.emit(line, command=is_command(decode_line(line)))
            self.emitted += 1

    async def run(self) -> None:
        self.running = True
        self.ctx.set_state("up", f"simulator with {len(self.nodes)} node(s)")
        try:
            self._emit(self.gateway_startup_lines())
            for node in self.nodes.values():
                self._emit(self.boot_lines(node))
            pause = self.interval / max(1, len(self.nodes))
            while True:
                self.ticks += 1
                if not self.nodes:
                    await asyncio.sleep(self.interval)
                for node in list(self.nodes.values()):
                    await asyncio.sleep(pause)  # nodes report at their own moments, not all at once
                    self._emit(self.node_tick_lines(node))
        finally:
            self.running = False
            self.ctx.set_state("down", "simulator stopped")

    async def send(self, downlink: Downlink) -> None:
        self._emit(self.handle_command(downlink.raw))

    def status(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "protocol": "simulator",
            "connected": self.running,
            "nodes": len(self.nodes),
            "ticks": self.ticks,
            "emitted": self.emitted,
            "commands": self.commands,
        }
