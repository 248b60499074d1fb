"""A fake Philips Hue bridge that serves the real CLIP v2 API over HTTPS: what the Hue gateway is tested against.

It serves what ``aiohue`` (and any v2 client) uses: ``GET /clip/v2/resource[/<type>[/<id>]]``, ``PUT`` and ``POST``
on resources (applied to its state, answered with the bridge's ``{"data": [{"rid", "rtype"}], "errors": []}``),
the event stream ``GET /eventstream/clip/v2`` (server-sent events: ``id: <time>:0`` and ``data: [<event>]``
lines, an ``update`` event for every change, as the bridge sends them), the v1 ``GET /api/config`` and the
link-button pairing ``POST /api`` (``[{"error": {"type": 101, "description": "link button not pressed"}}]``
until ``press_link_button``, then ``[{"success": {"username": <key>}}]``). Every v2 call needs the header
``hue-application-key``: a wrong or missing key is a 403, as on a bridge. TLS with a self-signed certificate made
here (a bridge's is signed by Signify's own CA, which clients do not check either).

``home()`` builds a small house: a colour lamp and a white lamp in a room, a motion sensor (motion,
temperature, light level, battery) and a dimmer switch (four buttons, battery). It runs on its own loop in a
thread: ``update`` changes a resource and pushes the event, ``drop_event_streams`` cuts the streams (a bridge
reboot), ``stop``/``start`` take it away and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.integration.services import free_port

BRIDGE_VERSION = "1.68.1968122020"


def make_tls(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (``cryptography``, no openssl)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "001788fffe000001")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "bridge.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "bridge.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "bridge.pem", directory / "bridge.key")
    return context


def _id() -> str:
    return str(uuid.uuid4())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class Home:
    """The ids of ``FakeHueBridge.home()``'s resources, for the tests to address."""

    bridge_device: str
    lamp: str
    lamp_light: str
    white: str
    white_light: str
    room: str
    room_group: str
    motion_sensor: str
    motion: str
    temperature: str
    light_level: str
    sensor_power: str
    dimmer: str
    buttons: list[str]
    dimmer_power: str
    lamp_zigbee: str


class FakeHueBridge:
    def __init__(self, workdir: Path, app_key: str = "fake-hue-application-key-0001", port: int | None = None) -> None:
        self.workdir = workdir
        self.app_key = app_key
        self.port = port or free_port()
        self.resources: dict[str, dict[str, Any]] = {}
        self.puts: list[tuple[str, str, dict[str, Any]]] = []
        self.pair_requests: list[dict[str, Any]] = []
        self.link_button = False
        self.issued_keys: list[str] = []
        self.stream_connections = 0
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tls = make_tls(workdir)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ the house

    def add(self, resource: dict[str, Any]) -> str:
        self.resources[resource["id"]] = resource
        return str(resource["id"])

    def _device(self, name: str, archetype: str, model: str, product: str, services: list[tuple[str, str]],
                id_v1: str | None = None) -> dict[str, Any]:
        device = {"id": _id(), "type": "device", "product_data": {
            "model_id": model, "manufacturer_name": "Signify Netherlands B.V.", "product_name": product,
            "product_archetype": archetype, "certified": True, "software_version": "1.116.3"},
            "metadata": {"name": name, "archetype": archetype},
            "services": [{"rid": rid, "rtype": rtype} for rtype, rid in services]}
        if id_v1:
            device["id_v1"] = id_v1
        return device

    def home(self) -> Home:
        """A small house (see the module's docstring); returns the ids."""
        owner = lambda device_id: {"rid": device_id, "rtype": "device"}  # noqa: E731
        ids = {name: _id() for name in ("bridge_device", "lamp", "white", "motion_sensor", "dimmer", "room")}
        bridge = {"id": _id(), "type": "bridge", "bridge_id": "001788fffe000001", "owner": owner(ids["bridge_device"]),
                  "time_zone": {"time_zone": "Europe/Amsterdam"}}
        self.add(bridge)
        bridge_device = self._device("Hue Bridge", "bridge_v2", "BSB002", "Hue Bridge", [("bridge", bridge["id"])])
        bridge_device["id"] = ids["bridge_device"]
        bridge_device["product_data"]["software_version"] = BRIDGE_VERSION
        self.add(bridge_device)

        def light(device_id: str, name: str, colour: bool, id_v1: str) -> dict[str, Any]:
            resource: dict[str, Any] = {
                "id": _id(), "id_v1": id_v1, "type": "light", "owner": owner(device_id),
                "metadata": {"name": name, "archetype": "sultan_bulb", "function": "mixed"},
                "on": {"on": False}, "mode": "normal", "dimming": {"brightness": 50.0, "min_dim_level": 0.2},
                "color_temperature": {"mirek": 366, "mirek_valid": True,
                                      "mirek_schema": {"mirek_minimum": 153, "mirek_maximum": 500}},
                "dynamics": {"status": "none", "status_values": ["none"], "speed": 0.0, "speed_valid": False},
                "alert": {"action_values": ["breathe"]}}
            if colour:
                resource["color"] = {"xy": {"x": 0.4573, "y": 0.41}, "gamut_type": "C", "gamut": {
                    "red": {"x": 0.6915, "y": 0.3083}, "green": {"x": 0.17, "y": 0.7},
                    "blue": {"x": 0.1532, "y": 0.0475}}}
            else:
                del resource["color_temperature"]
            return resource

        def zigbee(device_id: str) -> dict[str, Any]:
            return {"id": _id(), "type": "zigbee_connectivity", "owner": owner(device_id), "status": "connected",
                    "mac_address": "00:17:88:01:0b:aa:bb:" + device_id[:2]}

        lamp_light = self.add(light(ids["lamp"], "Sofa lamp", True, "/lights/1"))
        lamp_zigbee = self.add(zigbee(ids["lamp"]))
        lamp = self._device("Sofa lamp", "sultan_bulb", "LCA001", "Hue color lamp",
                            [("light", lamp_light), ("zigbee_connectivity", lamp_zigbee)], "/lights/1")
        lamp["id"] = ids["lamp"]
        self.add(lamp)
        white_light = self.add(light(ids["white"], "Hall", False, "/lights/2"))
        white = self._device("Hall", "classic_bulb", "LWB010", "Hue white lamp", [("light", white_light)],
                             "/lights/2")
        white["id"] = ids["white"]
        self.add(white)

        room_group = self.add({"id": _id(), "id_v1": "/groups/1", "type": "grouped_light",
                               "owner": {"rid": ids["room"], "rtype": "room"}, "on": {"on": False},
                               "dimming": {"brightness": 50.0}, "alert": {"action_values": ["breathe"]}})
        self.add({"id": ids["room"], "id_v1": "/groups/1", "type": "room",
                  "metadata": {"name": "Living room", "archetype": "living_room"},
                  "children": [{"rid": ids["lamp"], "rtype": "device"}, {"rid": ids["white"], "rtype": "device"}],
                  "services": [{"rid": room_group, "rtype": "grouped_light"}]})

        sensor = ids["motion_sensor"]
        motion = self.add({"id": _id(), "id_v1": "/sensors/5", "type": "motion", "owner": owner(sensor),
                           "enabled": True, "motion": {"motion": False, "motion_valid": True, "motion_report": {
                               "changed": _now(), "motion": False}}})
        temperature = self.add({"id": _id(), "id_v1": "/sensors/6", "type": "temperature", "owner": owner(sensor),
                                "enabled": True, "temperature": {"temperature": 21.56, "temperature_valid": True,
                                                                 "temperature_report": {"changed": _now(),
                                                                                        "temperature": 21.56}}})
        light_level = self.add({"id": _id(), "id_v1": "/sensors/7", "type": "light_level", "owner": owner(sensor),
                                "enabled": True, "light": {"light_level": 20001, "light_level_valid": True,
                                                           "light_level_report": {"changed": _now(),
                                                                                  "light_level": 20001}}})
        sensor_power = self.add({"id": _id(), "type": "device_power", "owner": owner(sensor),
                                 "power_state": {"battery_state": "normal", "battery_level": 87}})
        device = self._device("Hall sensor", "unknown_archetype", "SML001", "Hue motion sensor",
                              [("motion", motion), ("temperature", temperature), ("light_level", light_level),
                               ("device_power", sensor_power)], "/sensors/5")
        device["id"] = sensor
        self.add(device)

        dimmer = ids["dimmer"]
        buttons = [self.add({"id": _id(), "id_v1": "/sensors/8", "type": "button", "owner": owner(dimmer),
                             "metadata": {"control_id": n}, "button": {"last_event": "short_release",
                                                                       "button_report": {"updated": _now(),
                                                                                         "event": "short_release"},
                                                                       "repeat_interval": 800}})
                   for n in (1, 2, 3, 4)]
        dimmer_power = self.add({"id": _id(), "type": "device_power", "owner": owner(dimmer),
                                 "power_state": {"battery_state": "low", "battery_level": 9}})
        device = self._device("Dimmer", "unknown_archetype", "RWL022", "Hue dimmer switch",
                              [*(("button", b) for b in buttons), ("device_power", dimmer_power)], "/sensors/8")
        device["id"] = dimmer
        self.add(device)
        return Home(ids["bridge_device"], ids["lamp"], lamp_light, ids["white"], white_light, ids["room"], room_group,
                    sensor, motion, temperature, light_level, sensor_power, dimmer, buttons, dimmer_power, lamp_zigbee)

    # ------------------------------------------------------------------ changes and events

    def _event(self, kind: str, data: list[dict[str, Any]]) -> None:
        event = [{"creationtime": _now(), "data": data, "id": _id(), "type": kind}]
        text = f"id: {int(datetime.datetime.now().timestamp())}:0\ndata: {json.dumps(event)}\n\n"
        for queue in list(self._streams):
            queue.put_nowait(text)

    def _apply(self, rid: str, changes: dict[str, Any]) -> None:
        resource = self.resources[rid]
        _merge(resource, changes)
        delta = {"id": rid, "type": resource["type"], **copy.deepcopy(changes)}
        for key in ("id_v1", "owner"):
            if key in resource:
                delta[key] = resource[key]
        self._event("update", [delta])

    def update(self, rid: str, changes: dict[str, Any]) -> None:
        """Something changed on the bridge (a sensor reading, someone used the Hue app): apply it, push the event."""
        self._call(lambda: self._apply(rid, changes))

    def press_link_button(self) -> None:
        self.link_button = True

    # ------------------------------------------------------------------ HTTP

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("hue-application-key") in (self.app_key, *self.issued_keys)

    @staticmethod
    def _forbidden() -> web.Response:
        return web.json_response({"errors": [{"description": "unauthorized user"}], "data": []}, status=403)

    async def _pair(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.pair_requests.append(body)
        if not self.link_button:
            return web.json_response([{"error": {"type": 101, "address": "", "description":
                                                 "link button not pressed"}}])
        key = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self.issued_keys.append(key)
        self.link_button = False
        return web.json_response([{"success": {"username": key, "clientkey": uuid.uuid4().hex.upper()}}])

    async def _config(self, _request: web.Request) -> web.Response:
        return web.json_response({"name": "Hue Bridge", "datastoreversion": "166", "swversion": "1968122020",
                                  "apiversion": "1.68.0", "mac": "00:17:88:00:00:01", "bridgeid": "001788FFFE000001",
                                  "factorynew": False, "replacesbridgeid": None, "modelid": "BSB002"})

    async def _get(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._forbidden()
        rtype = request.match_info.get("rtype")
        rid = request.match_info.get("rid")
        data = [r for r in self.resources.values() if rtype is None or r["type"] == rtype]
        if rid is not None:
            data = [r for r in data if r["id"] == rid]
            if not data:
                return web.json_response({"errors": [{"description": f"Not Found: /{rtype}/{rid}"}], "data": []},
                                         status=404)
        return web.json_response({"errors": [], "data": copy.deepcopy(data)})

    async def _put(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._forbidden()
        rtype, rid = request.match_info["rtype"], request.match_info["rid"]
        resource = self.resources.get(rid)
        if resource is None or resource["type"] != rtype:
            return web.json_response({"errors": [{"description": f"Not Found: /{rtype}/{rid}"}], "data": []},
                                     status=404)
        body = await request.json()
        with self._lock:
            self.puts.append((rtype, rid, body))
        changes = {k: v for k, v in body.items() if k not in ("dynamics", "alert", "identify")}
        if changes:
            self._apply(rid, changes)
        return web.json_response({"data": [{"rid": rid, "rtype": rtype}], "errors": []})

    async def _post(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._forbidden()
        rtype = request.match_info["rtype"]
        body = await request.json()
        resource = {"id": _id(), "type": rtype, **body}
        self.resources[resource["id"]] = resource
        self._event("add", [copy.deepcopy(resource)])
        return web.json_response({"data": [{"rid": resource["id"], "rtype": rtype}], "errors": []})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._forbidden()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._streams.add(queue)
        self.stream_connections += 1
        try:
            await response.write(b": hi\n\n")
            while (text := await queue.get()) is not None:
                await response.write(text.encode())
        finally:
            self._streams.discard(queue)
        return response

    @property
    def streams(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------------ running

    def start(self) -> FakeHueBridge:
        ready = threading.Event()
        app = web.Application()
        app.router.add_post("/api", self._pair)
        app.router.add_get("/api/config", self._config)
        app.router.add_get("/clip/v2/resource", self._get)
        app.router.add_get("/clip/v2/resource/{rtype}", self._get)
        app.router.add_get("/clip/v2/resource/{rtype}/{rid}", self._get)
        app.router.add_put("/clip/v2/resource/{rtype}/{rid}", self._put)
        app.router.add_post("/clip/v2/resource/{rtype}", self._post)
        app.router.add_get("/eventstream/clip/v2", self._stream)

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._tls)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-hue-bridge", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Hue bridge did not start")
        return self

    def _call(self, fn: Any) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the fake bridge is not running")
        done = threading.Event()

        def wrapped() -> None:
            try:
                fn()
            finally:
                done.set()

        loop.call_soon_threadsafe(wrapped)
        done.wait(5)

    def drop_event_streams(self) -> None:
        """End every event stream (what a bridge reboot or a Wi-Fi blip does to clients)."""
        self._call(lambda: [queue.put_nowait(None) for queue in list(self._streams)])

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None or runner is None:
            return
        for queue in list(self._streams):
            loop.call_soon_threadsafe(queue.put_nowait, None)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = self._runner = None
