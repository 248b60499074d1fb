"""The ESPHome gateway against a fake device that speaks ESPHome's native API over TCP (plaintext and Noise):
entities and states go up, every kind of command the cloud builds comes down as the device's own command, a
device that goes away is reported and reconnected, refusals say what to fix, mDNS discovery finds devices."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.core.actions import node_action, set_field
from chalicelib.core.model import FieldModel, Gateway, Node, Record
from edge.gateways import build_gateway
from edge.gateways.esphome.entities import EspHomeCommandRefused
from mycontroller_protocol.envelope import Downlink
from tests.integration.esphome_fake import FakeEspHomeDevice, new_key
from tests.integration.gateway_helpers import FakeContext, free_port, running, wait_for

GATEWAY: Record = Gateway(id="esp", provider={"type": "esphome"}).record()


def kitchen(key: str | None = None, password: str | None = None, name: str = "kitchen-node",
            port: int | None = None, deep_sleep: bool = False) -> FakeEspHomeDevice:
    """A device with one entity of every kind the gateway commands, and a sensor or two."""
    device = FakeEspHomeDevice(name, encryption_key=key, password=password, port=port, deep_sleep=deep_sleep)
    device.add("sensor", "temperature", "Temperature", {"state": 21.37}, unit_of_measurement="°C",
               accuracy_decimals=1, device_class="temperature", state_class=1)
    device.add("binary_sensor", "motion", "Motion", {"state": False}, device_class="motion")
    device.add("switch", "relay", "Relay", {"state": False})
    device.add("light", "ceiling", "Ceiling", {"state": False, "brightness": 1.0, "red": 1.0, "green": 1.0,
                                               "blue": 1.0, "color_temperature": 300.0, "color_mode": 35},
               supported_color_modes=[35, 11], min_mireds=153, max_mireds=500, effects=["None", "Rainbow"])
    device.add("number", "target", "Target", {"state": 20.0}, min_value=5, max_value=30, step=0.5,
               unit_of_measurement="°C")
    device.add("select", "mode", "Mode", {"state": "comfort"}, options=["eco", "comfort"])
    device.add("button", "restart", "Restart", device_class="restart", entity_category=1)
    device.add("cover", "blind", "Blind", {"position": 1.0, "tilt": 0.0, "current_operation": 0},
               supports_position=True, supports_tilt=True, supports_stop=True)
    device.add("fan", "fan", "Fan", {"state": False, "speed_level": 1}, supports_speed=True,
               supported_speed_count=3)
    device.add("lock", "door", "Door", {"state": 1})
    return device


@pytest.fixture
def devices() -> Iterator[list[FakeEspHomeDevice]]:
    made: list[FakeEspHomeDevice] = []
    yield made
    for device in made:
        device.stop()


def gateway_for(nodes: dict[str, Any], **provider: Any) -> tuple[Any, FakeContext]:
    ctx = FakeContext("esp", "esphome")
    config = {"id": "esp", "reconnectDelay": "1s", "provider": {"type": "esphome", "timeout": "3s", "nodes": nodes,
                                                               **provider}}
    return build_gateway("esp", config, ctx), ctx


def messages(ctx: FakeContext) -> list[tuple[dict[str, Any], bool]]:
    return [(json.loads(raw), command) for raw, _topic, command in ctx.emits]


def states(ctx: FakeContext, source: str) -> list[Any]:
    return [m["v"] for m, _ in messages(ctx) if m["t"] == "state" and m["s"] == source]


def field(source: str, field_id: str, metric_type: str, value: Any = None) -> Record:
    return FieldModel.model_validate({"gatewayId": "esp", "nodeId": "kitchen", "sourceId": source,
                                      "fieldId": field_id, "metricType": metric_type,
                                      "current": {"value": value}}).record()


def test_entities_states_and_every_command_over_an_encrypted_connection(devices: list[FakeEspHomeDevice]) -> None:
    key = new_key()
    device = kitchen(key)
    devices.append(device.start())
    gateway, ctx = gateway_for({"kitchen": {"address": device.address}}, encryptionKey=key)

    async def act(source: str, field_id: str, metric_type: str, payload: Any, current: Any = None) -> None:
        await gateway.send(set_field(GATEWAY, field(source, field_id, metric_type, current), payload))

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="connected")
            await wait_for(lambda: states(ctx, "door"), what="the initial states")
            sent = messages(ctx)
            device_info, command = sent[0]
            assert command and device_info["t"] == "device" and device_info["n"] == "kitchen"
            assert (device_info["name"], device_info["fn"], device_info["mac"]) == ("kitchen-node", "Kitchen",
                                                                                    "AC:67:B2:11:22:33")
            entities = {m["s"]: m for m, command in sent if m["t"] == "entity" and command}
            assert set(entities) == {"temperature", "motion", "relay", "ceiling", "target", "mode", "restart",
                                     "blind", "fan", "door"}
            assert entities["temperature"] == {"t": "entity", "n": "kitchen", "s": "temperature", "k": "sensor",
                                               "name": "Temperature", "dc": "temperature", "u": "°C",
                                               "sc": "measurement"}
            assert entities["ceiling"]["modes"] == ["on_off", "brightness", "color_temperature", "rgb"]
            assert entities["mode"]["opts"] == ["eco", "comfort"] and entities["restart"]["ec"] == "config"
            assert all(not command for m, command in sent if m["t"] == "state")  # telemetry
            assert states(ctx, "temperature") == [21.4]  # rounded to the sensor's accuracy
            assert states(ctx, "ceiling") == [{"state": False, "brightness": 1.0, "rgb": [1.0, 1.0, 1.0],
                                               "color_temperature": 300.0}]
            assert states(ctx, "blind") == [{"closed": False, "op": "idle", "position": 1.0, "tilt": 0.0}]
            assert states(ctx, "door") == ["locked"]

            device.set_state("temperature", state=22.04)
            await wait_for(lambda: states(ctx, "temperature") == [21.4, 22.0], what="a new reading")

            # what the API's actions send, the device gets as its own commands, and its new state comes back
            await act("relay", "state", "binary", "toggle", current=False)
            await wait_for(lambda: states(ctx, "relay")[-1:] == [True], what="switch on")
            assert device.commands_named("SwitchCommandRequest")[0]["state"] is True
            await act("ceiling", "brightness", "gauge_float", 40)
            await act("ceiling", "rgb", "string", "#0000ff")
            await act("ceiling", "color_temperature", "gauge_float", 250)
            await act("ceiling", "effect", "string", "Rainbow")
            await wait_for(lambda: len(device.commands_named("LightCommandRequest")) == 4, what="light commands")
            brightness, rgb, temperature, effect = device.commands_named("LightCommandRequest")
            assert brightness["has_state"] and brightness["state"] and brightness["has_brightness"]
            assert brightness["brightness"] == pytest.approx(0.4)
            assert rgb["has_rgb"] and (rgb["red"], rgb["green"], rgb["blue"]) == (0.0, 0.0, 1.0)
            assert temperature["has_color_temperature"] and temperature["color_temperature"] == 250.0
            assert effect["has_effect"] and effect["effect"] == "Rainbow"
            await wait_for(lambda: states(ctx, "ceiling")[-1] == {
                "state": True, "brightness": 0.4, "rgb": [0.0, 0.0, 1.0], "color_temperature": 250.0,
                "effect": "Rainbow"}, what="the light's new state")
            await act("target", "state", "gauge_float", "21.5")
            await act("mode", "state", "string", "eco")
            await act("restart", "press", "none", "press")
            await act("blind", "position", "gauge_float", 30)
            await act("blind", "state", "string", "stop")
            await act("fan", "speed_level", "gauge", 3)
            await act("door", "state", "string", "unlock")
            await wait_for(lambda: states(ctx, "door")[-1:] == ["unlocked"], what="door unlocked")
            assert device.commands_named("NumberCommandRequest")[0]["state"] == 21.5
            assert device.commands_named("SelectCommandRequest")[0]["state"] == "eco"
            assert len(device.commands_named("ButtonCommandRequest")) == 1
            position, stop = device.commands_named("CoverCommandRequest")
            assert position["has_position"] and position["position"] == pytest.approx(0.3) and stop["stop"]
            fan = device.commands_named("FanCommandRequest")[0]
            assert fan["has_speed_level"] and fan["speed_level"] == 3 and fan["has_state"] and fan["state"]
            assert device.commands_named("LockCommandRequest")[0]["command"] == 0  # UNLOCK
            await wait_for(lambda: states(ctx, "blind")[-1]["position"] == pytest.approx(0.3), what="blind moved")
            assert states(ctx, "target")[-1] == 21.5 and states(ctx, "mode")[-1] == "eco"

            # what only the device can know is refused at the edge, with the reason
            with pytest.raises(EspHomeCommandRefused, match="not one of its options"):
                await act("mode", "state", "string", "party")
            with pytest.raises(EspHomeCommandRefused, match=r"outside 5\.\.30"):
                await act("target", "state", "gauge_float", 99)
            with pytest.raises(EspHomeCommandRefused, match="read-only"):
                await act("temperature", "state", "gauge_float", 30)
            with pytest.raises(EspHomeCommandRefused, match="no entity"):
                await act("nothing", "state", "binary", "on")

            # node actions: a heartbeat is answered, refresh sends everything again, reboot presses restart
            node = Node(gateway_id="esp", node_id="kitchen").record()
            before = len(ctx.emits)
            await gateway.send(node_action(GATEWAY, node, "heartbeat_request"))
            await gateway.send(node_action(GATEWAY, node, "refresh_node_info"))
            again = [m for m, _ in messages(ctx)[before:]]
            assert [m["t"] for m in again[:2]] == ["device", "device"]
            assert {m["s"] for m in again if m["t"] == "entity"} == set(entities)
            await gateway.send(node_action(GATEWAY, node, "reboot"))
            await wait_for(lambda: len(device.commands_named("ButtonCommandRequest")) == 2, what="restart pressed")
            status = gateway.status()["devices"]["kitchen"]
            assert status["connected"] and status["encrypted"] and status["entities"] == 10

    asyncio.run(scenario())
    assert device.hellos and device.hellos[0] == "MyController edge"


def test_a_device_that_goes_away_is_reported_and_reconnected(devices: list[FakeEspHomeDevice]) -> None:
    device = kitchen()
    devices.append(device.start())
    gateway, ctx = gateway_for({"kitchen": {"address": device.address, "aliveCheckInterval": "1s"}})

    def offline() -> list[dict[str, Any]]:
        return [m for m, command in messages(ctx) if m["t"] == "offline" and command]

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up" and device.clients == 1, what="connected")
            device.drop_connections()  # a power blip: no goodbye
            await wait_for(lambda: offline(), what="reported offline")
            assert offline()[0]["n"] == "kitchen"
            await wait_for(lambda: device.clients == 1 and ctx.status == "up", what="reconnected")
            assert sum(1 for m, _ in messages(ctx) if m["t"] == "device") == 2  # info and entities sent again

            device.stop()  # gone for a while
            await wait_for(lambda: ctx.status == "down", what="down while the device is off")
            assert "kitchen" in ctx.states[-1][1]
            await asyncio.sleep(2.5)  # a few attempts fail meanwhile
            device.start()
            await wait_for(lambda: device.clients == 1 and ctx.status == "up", timeout=15, what="back")
            assert len(offline()) == 2

    asyncio.run(scenario())
    statuses = [status for status, _ in ctx.states]
    changes = [status for index, status in enumerate(statuses) if index == 0 or statuses[index - 1] != status]
    assert changes == ["up", "down", "up", "down", "up", "down"]  # the last: the gateway stopped
    assert ("down", "no device connected: kitchen disconnected: Connection refused") in ctx.states


def test_a_sleeping_device_is_not_reported_offline_for_its_sleep(devices: list[FakeEspHomeDevice]) -> None:
    device = kitchen(deep_sleep=True)
    devices.append(device.start())
    gateway, ctx = gateway_for({"kitchen": {"address": device.address}})

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: device.clients == 1, what="connected")
            assert messages(ctx)[0][0]["sleep"] is True
            device.drop_connections()  # it went to sleep
            await wait_for(lambda: device.connections == 2 and device.clients == 1, what="awake again")
            assert not [m for m, _ in messages(ctx) if m["t"] == "offline"]

    asyncio.run(scenario())


@pytest.mark.parametrize(("device_key", "device_password", "node", "expected"), [
    ("device", None, {"encryptionKey": "other"}, "refused the encryption key"),
    ("device", None, {}, "requires encryption"),
    (None, "s3cret", {"password": "wrong"}, "refused the API password"),
])
def test_refusals_say_what_to_fix(devices: list[FakeEspHomeDevice], device_key: str | None,
                                  device_password: str | None, node: dict[str, Any], expected: str) -> None:
    key = new_key() if device_key else None
    device = kitchen(key, device_password)
    devices.append(device.start())
    if node.get("encryptionKey") == "other":
        node = {"encryptionKey": new_key()}
    gateway, ctx = gateway_for({"kitchen": {"address": device.address, **node}})

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "down" and expected in ctx.states[-1][1], timeout=15,
                           what=f"down with {expected!r}")
            assert not any(json.loads(raw)["t"] == "state" for raw in ctx.lines)
            assert expected in gateway.status()["devices"]["kitchen"]["message"]

    asyncio.run(scenario())


def test_the_right_password_is_accepted(devices: list[FakeEspHomeDevice]) -> None:
    device = kitchen(None, "s3cret")
    devices.append(device.start())
    gateway, ctx = gateway_for({"kitchen": {"address": device.address}}, password="s3cret")  # the global one

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="connected with the global password")

    asyncio.run(scenario())
    assert device.refused == 0


def test_one_device_that_is_off_does_not_hold_the_others_back(devices: list[FakeEspHomeDevice]) -> None:
    device = kitchen()
    devices.append(device.start())
    gateway, ctx = gateway_for({"kitchen": {"address": device.address},
                                "garage": {"address": f"127.0.0.1:{free_port()}"},
                                "attic": {"address": "127.0.0.1:1", "disabled": True}})

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="up")
            await wait_for(lambda: "garage" in gateway.status()["devices"]
                           and "cannot connect" in gateway.status()["devices"]["garage"]["message"], what="garage")
            assert ctx.states[-1][1] == "1 of 2 devices connected: kitchen"
            assert "attic" not in gateway.status()["devices"]
            with pytest.raises(ConnectionError, match="not connected"):
                await gateway.send(Downlink("esp", "esphome", json.dumps({"n": "garage", "s": "x", "f": "state",
                                                                          "v": True})))
            with pytest.raises(EspHomeCommandRefused, match="no ESPHome device"):
                await gateway.send(Downlink("esp", "esphome", json.dumps({"n": "cellar", "a": "reboot"})))

    asyncio.run(scenario())


def test_mdns_discovery_finds_a_device_and_connects_with_the_global_key(devices: list[FakeEspHomeDevice]) -> None:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    key = new_key()
    name = f"porch-{free_port()}"
    device = kitchen(key, name=name)
    devices.append(device.start())
    gateway, ctx = gateway_for({}, encryptionKey=key, discovery=True, discoveryInterfaces=["127.0.0.1"])

    async def scenario() -> None:
        announcer = AsyncZeroconf(interfaces=["127.0.0.1"])
        info = ServiceInfo("_esphomelib._tcp.local.", f"{name}._esphomelib._tcp.local.",
                           addresses=[socket.inet_aton("127.0.0.1")], port=device.port,
                           properties={"mac": "ac67b2112233", "version": "2026.6.0"}, server=f"{name}.local.")
        await announcer.async_register_service(info)
        try:
            async with running(gateway):
                await wait_for(lambda: device.clients == 1, timeout=20, what="the discovered device connected")
                await wait_for(lambda: states(ctx, "door"), what="its states")
                node_ids = {m["n"] for m, _ in messages(ctx)}
                assert node_ids == {name}
                assert gateway.status()["devices"][name]["discovered"]
        finally:
            await announcer.async_unregister_service(info)
            await announcer.async_close()

    asyncio.run(scenario())
    assert ctx.states[0] == ("up", "discovering ESPHome devices (mDNS)")
