"""A fake ESPHome device that speaks the real native API on a TCP port: what the ESPHome gateway is tested against.

The wire is ESPHome's own: plaintext frames (``0x00``, varint length, varint message type, protobuf) or, with an
encryption key, the Noise protocol (``Noise_NNpsk0_25519_ChaChaPoly_SHA256``, prologue ``NoiseAPIInit\\0\\0``,
``0x01`` + 16-bit length frames, the device's name and MAC in its server hello), with the protobuf messages of
``aioesphomeapi.api_pb2``. Like a device it answers hello, authentication (refusing a wrong password), device info,
the entity list and state subscriptions, pings and disconnects; it carries out switch, light, number, select,
button, cover, fan and lock commands by changing its state and reporting the new state, as ESPHome does, and
records every command it received. A wrong key gets ESPHome's ``Handshake MAC failure``; a plaintext client of an
encrypted device gets a Noise frame (what makes the client say encryption is required).

It runs on its own event loop in a thread, so a test (or the local stack's agent thread) can talk to it from
anywhere: ``set_state`` pushes a new state to subscribed clients, ``drop_connections`` cuts them (a power cut),
``stop``/``start`` take the device away and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from aioesphomeapi import api_pb2
from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO
from google.protobuf import message as pb_message

from tests.integration.services import free_port

TYPE_OF: dict[type[pb_message.Message], int] = {cls: number for number, cls in MESSAGE_TYPE_TO_PROTO.items()}
PROLOGUE = b"NoiseAPIInit\x00\x00"

_PROTOS: dict[str, tuple[str, str | None]] = {
    "binary_sensor": ("ListEntitiesBinarySensorResponse", "BinarySensorStateResponse"),
    "sensor": ("ListEntitiesSensorResponse", "SensorStateResponse"),
    "text_sensor": ("ListEntitiesTextSensorResponse", "TextSensorStateResponse"),
    "switch": ("ListEntitiesSwitchResponse", "SwitchStateResponse"),
    "light": ("ListEntitiesLightResponse", "LightStateResponse"),
    "number": ("ListEntitiesNumberResponse", "NumberStateResponse"),
    "select": ("ListEntitiesSelectResponse", "SelectStateResponse"),
    "button": ("ListEntitiesButtonResponse", None),
    "cover": ("ListEntitiesCoverResponse", "CoverStateResponse"),
    "fan": ("ListEntitiesFanResponse", "FanStateResponse"),
    "lock": ("ListEntitiesLockResponse", "LockStateResponse"),
}


def new_key() -> str:
    """An API encryption key as ESPHome's YAML holds it (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class FakeEntity:
    kind: str
    object_id: str
    key: int
    info: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)


class _Link:
    """One client connection: framing (plain or Noise) in both directions."""

    def __init__(self, device: FakeEspHomeDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.device = device
        self.reader = reader
        self.writer = writer
        self.noise: Any = None
        self.subscribed = False

    # ------------------------------------------------------------------ framing

    async def _read_varint(self) -> int:
        result, shift = 0, 0
        while True:
            byte = (await self.reader.readexactly(1))[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    @staticmethod
    def _varint(value: int) -> bytes:
        out = bytearray()
        while True:
            bits = value & 0x7F
            value >>= 7
            out.append(bits | (0x80 if value else 0))
            if not value:
                return bytes(out)

    async def _read_noise_frame(self) -> bytes:
        header = await self.reader.readexactly(3)
        if header[0] != 0x01:
            raise ConnectionError(f"bad noise preamble {header[0]}")
        return await self.reader.readexactly((header[1] << 8) | header[2])

    def _write_noise_frame(self, payload: bytes) -> None:
        self.writer.write(bytes((0x01, len(payload) >> 8, len(payload) & 0xFF)) + payload)

    async def handshake(self) -> bool:
        """Noise responder side; False when the client is refused (wrong key, plaintext client)."""
        from noise.connection import NoiseConnection

        first = await self.reader.readexactly(1)
        key = self.device.encryption_key
        if key is None:
            if first[0] != 0x00:
                self.writer.close()
                return False
            self.pending_first = True
            return True
        if first[0] != 0x01:  # a plaintext client: answer in Noise framing, as an encrypted device does
            self._write_noise_frame(b"\x01")
            await self.writer.drain()
            return False
        rest = await self.reader.readexactly(2)
        await self.reader.readexactly((rest[0] << 8) | rest[1])  # the client's (empty) hello frame
        client_handshake = await self._read_noise_frame()
        name = self.device.name.encode()
        mac = self.device.mac.replace(":", "").lower().encode()
        self._write_noise_frame(b"\x01" + name + b"\x00" + mac + b"\x00")
        proto = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
        proto.set_as_responder()
        proto.set_psks(base64.b64decode(key))
        proto.set_prologue(PROLOGUE)
        proto.start_handshake()
        try:
            proto.read_message(client_handshake[1:])
        except Exception:  # InvalidTag: the client has another key
            self._write_noise_frame(b"\x01Handshake MAC failure")
            await self.writer.drain()
            self.device.refused += 1
            return False
        self._write_noise_frame(b"\x00" + bytes(proto.write_message()))
        await self.writer.drain()
        self.noise = proto
        self.pending_first = False
        return True

    async def read(self) -> tuple[int, bytes]:
        if self.noise is None:
            if not getattr(self, "pending_first", False):
                preamble = (await self.reader.readexactly(1))[0]
                if preamble != 0x00:
                    raise ConnectionError("bad plaintext preamble")
            self.pending_first = False
            length = await self._read_varint()
            msg_type = await self._read_varint()
            return msg_type, await self.reader.readexactly(length) if length else b""
        frame = self.noise.decrypt(await self._read_noise_frame())
        return (frame[0] << 8) | frame[1], bytes(frame[4:])

    def send(self, *messages: pb_message.Message) -> None:
        if self.writer.is_closing():
            return
        for msg in messages:
            data = msg.SerializeToString()
            msg_type = TYPE_OF[type(msg)]
            if self.noise is None:
                self.writer.write(b"\x00" + self._varint(len(data)) + self._varint(msg_type) + data)
            else:
                plain = bytes((msg_type >> 8, msg_type & 0xFF, len(data) >> 8, len(data) & 0xFF)) + data
                self._write_noise_frame(self.noise.encrypt(plain))

    # ------------------------------------------------------------------ the conversation

    async def serve(self) -> None:
        device = self.device
        if not await self.handshake():
            return
        while True:
            msg_type, data = await self.read()
            proto = MESSAGE_TYPE_TO_PROTO.get(msg_type)
            if proto is None:
                continue
            msg = proto()
            msg.ParseFromString(data)
            name = type(msg).__name__
            if name == "HelloRequest":
                device.hellos.append(msg.client_info)
                self.send(api_pb2.HelloResponse(api_version_major=1, api_version_minor=12,
                                                server_info=f"{device.name} (esphome v{device.version})",
                                                name=device.name))
            elif name == "AuthenticationRequest":
                if device.password is not None and msg.password != device.password:
                    self.send(api_pb2.AuthenticationResponse(invalid_password=True))
                    await self.writer.drain()
                    device.refused += 1
                    return
            elif name == "DeviceInfoRequest":
                self.send(api_pb2.DeviceInfoResponse(
                    uses_password=device.password is not None, name=device.name, friendly_name=device.friendly_name,
                    mac_address=device.mac, esphome_version=device.version, compilation_time="Jun 30 2026, 10:00:00",
                    model="esp32dev", manufacturer="Espressif", webserver_port=80, has_deep_sleep=device.deep_sleep,
                    api_encryption_supported=device.encryption_key is not None))
            elif name == "ListEntitiesRequest":
                self.send(*[device.info_message(entity) for entity in device.entities.values()],
                          api_pb2.ListEntitiesDoneResponse())
            elif name == "SubscribeStatesRequest":
                self.subscribed = True
                self.send(*[m for e in device.entities.values() if (m := device.state_message(e)) is not None])
            elif name == "PingRequest":
                device.pings += 1
                self.send(api_pb2.PingResponse())
            elif name == "DisconnectRequest":
                self.send(api_pb2.DisconnectResponse())
                await self.writer.drain()
                return
            elif name.endswith("CommandRequest"):
                device.command(name, msg)
            await self.writer.drain()


class FakeEspHomeDevice:
    """An ESPHome device on 127.0.0.1:<port>; build its entities with ``add``, then ``start``."""

    def __init__(self, name: str = "kitchen-node", *, friendly_name: str = "Kitchen", encryption_key: str | None = None,
                 password: str | None = None, mac: str = "AC:67:B2:11:22:33", version: str = "2026.6.0",
                 port: int | None = None, deep_sleep: bool = False) -> None:
        self.name = name
        self.deep_sleep = deep_sleep
        self.friendly_name = friendly_name
        self.encryption_key = encryption_key
        self.password = password
        self.mac = mac
        self.version = version
        self.port = port or free_port()
        self.entities: dict[int, FakeEntity] = {}
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.hellos: list[str] = []
        self.connections = 0
        self.refused = 0
        self.pings = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ entities

    def add(self, kind: str, object_id: str, name: str, state: dict[str, Any] | None = None,
            **info: Any) -> FakeEntity:
        """An entity: ``info`` are the fields of its ``ListEntities…Response``, ``state`` of its state message."""
        key = 1000 + len(self.entities)
        entity = FakeEntity(kind, object_id, key, {"name": name, **info}, dict(state or {}))
        self.entities[key] = entity
        return entity

    def entity(self, object_id: str) -> FakeEntity:
        return next(e for e in self.entities.values() if e.object_id == object_id)

    def info_message(self, entity: FakeEntity) -> pb_message.Message:
        cls = getattr(api_pb2, _PROTOS[entity.kind][0])
        return cls(object_id=entity.object_id, key=entity.key, name=entity.info.get("name", entity.object_id),
                   **{k: v for k, v in entity.info.items() if k != "name"})

    def state_message(self, entity: FakeEntity) -> pb_message.Message | None:
        state_name = _PROTOS[entity.kind][1]
        if state_name is None or not entity.state:
            return None
        return getattr(api_pb2, state_name)(key=entity.key, **entity.state)

    # ------------------------------------------------------------------ what a device does

    def command(self, name: str, msg: Any) -> None:
        """Carry out a command as ESPHome does: change the state, report it to every subscriber."""
        fields = {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}
        with self._lock:
            self.commands.append((name, fields))
        entity = self.entities.get(msg.key)
        if entity is None:
            return
        state = entity.state
        if name in ("SwitchCommandRequest", "NumberCommandRequest", "SelectCommandRequest"):
            state["state"] = msg.state
        elif name == "LightCommandRequest":
            for part in ("state", "brightness", "color_temperature", "white", "effect"):
                if getattr(msg, f"has_{part}"):
                    state[part] = getattr(msg, part)
            if msg.has_rgb:
                state.update(red=msg.red, green=msg.green, blue=msg.blue)
        elif name == "CoverCommandRequest":
            if msg.has_position:
                state.update(position=msg.position, current_operation=0)
            if msg.has_tilt:
                state["tilt"] = msg.tilt
            if msg.stop:
                state["current_operation"] = 0
        elif name == "FanCommandRequest":
            for part in ("state", "speed_level", "oscillating", "direction", "preset_mode"):
                if getattr(msg, f"has_{part}", False):
                    state[part] = getattr(msg, part)
        elif name == "LockCommandRequest":
            state["state"] = {0: 2, 1: 1, 2: 7}[msg.command]  # unlock → UNLOCKED, lock → LOCKED, open → OPEN
        else:
            return  # a button: pressed, nothing to report
        self._publish(entity)

    def _publish(self, entity: FakeEntity) -> None:
        message = self.state_message(entity)
        if message is None:
            return
        for link in list(self._links):
            if link.subscribed:
                link.send(message)

    def set_state(self, object_id: str, **state: Any) -> None:
        """The device measured something: push the new state to subscribed clients (from any thread)."""
        entity = self.entity(object_id)

        def apply() -> None:
            entity.state.update(state)
            self._publish(entity)

        self._call(apply)

    def commands_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [fields for kind, fields in self.commands if kind == name]

    # ------------------------------------------------------------------ running

    def start(self) -> FakeEspHomeDevice:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-esphome-{self.name}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake ESPHome device did not start")
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        link = _Link(self, reader, writer)
        self._links.add(link)
        try:
            await link.serve()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._links.discard(link)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _call(self, fn: Any) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake device is not running")
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn()
            finally:
                done.set()

        loop.call_soon_threadsafe(wrapped)
        done.wait(5)

    @property
    def clients(self) -> int:
        """Clients connected and subscribed to states now."""
        return sum(1 for link in list(self._links) if link.subscribed)

    def drop_connections(self) -> None:
        """Cut every connection without a goodbye (the device lost power for a moment)."""
        def drop() -> None:
            for link in list(self._links):
                link.writer.transport.abort()

        self._call(drop)

    def stop(self) -> None:
        """Take the device off the network (close the server and every connection)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                link.writer.transport.abort()
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        self._loop = self._thread = self._server = None
