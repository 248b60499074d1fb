"""Tasmota's discovery messages (issue #19), against a real mosquitto: a device that has published its retained
``tasmota/discovery/<MAC>/config`` and ``…/sensors`` gets its friendly names (node and relays) and its facts in
the cloud, through the edge's Tasmota gateway and the cloud's processor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.model import Kind
from chalicelib.core.processor import Processor
from chalicelib.core.providers.tasmota import TasmotaInterpreter, node_command_topic
from edge.gateways import build_gateway
from edge.gateways.transport import MqttSettings, MqttTransport
from mycontroller_protocol.envelope import Envelope
from tests.integration.edge_helpers import Broker
from tests.integration.gateway_helpers import FakeContext, MqttProbe, running, wait_for
from tests.unit.test_tasmota_provider import ListMetrics

MAC = "A4CF125F2A1C"
DEVICE = "tasmota_5F2A1C"
CONFIG: dict[str, Any] = {
    "ip": "192.168.1.61", "dn": "Living Room Strip", "fn": ["Lamp", "Fan", None, None, None, None, None, None],
    "hn": "living-strip-2652", "mac": MAC, "md": "Sonoff Dual R2", "ty": 0, "if": 0, "ofln": "Offline",
    "onln": "Online", "state": ["OFF", "ON", "TOGGLE", "HOLD"], "sw": "13.2.0", "t": DEVICE,
    "ft": "%prefix%/%topic%/", "tp": ["cmnd", "stat", "tele"], "rl": [1, 1, 0, 0, 0, 0, 0, 0],
    "swc": [-1] * 8, "swn": [None] * 8, "btn": [0] * 8,
    "so": {"4": 0, "11": 0, "13": 0, "17": 0, "20": 0, "30": 0, "68": 0, "73": 0, "82": 0, "114": 0, "117": 0},
    "lk": 0, "lt_st": 0, "bat": 0, "dslp": 0, "sho": [], "sht": [], "ver": 1}
SENSORS = {"sn": {"Time": "2026-07-01T10:00:00", "AM2301": {"Temperature": 22.4, "Humidity": 48.1},
                  "TempUnit": "C"}, "ver": 1}


async def _publish_retained(url: str, messages: list[tuple[str, str]]) -> None:
    """As the device did at its start: retained messages, published before the gateway subscribes."""
    transport = MqttTransport(MqttSettings(broker=url, subscriptions=[], client_id="tasmota-device-boot"))
    await transport.start()
    assert await transport.wait_connected(10)
    for topic, payload in messages:
        await transport.publish(topic, payload, qos=1, retain=True)
    await transport.stop()


def test_discovery_names_the_node_and_its_relays_and_tells_how_to_reach_it(volatile_broker: Broker,
                                                                           tmp_path: Path) -> None:
    ctx = FakeContext("tas", provider="tasmota")
    gateway = build_gateway("tas", {"id": "tas", "reconnectDelay": "1s", "dataDir": str(tmp_path), "provider": {
        "type": "tasmota", "protocol": {"type": "mqtt", "broker": volatile_broker.url}}}, ctx)
    state = {"POWER1": "ON", "POWER2": "OFF", "Wifi": {"RSSI": 80}}

    async def scenario() -> None:
        await _publish_retained(volatile_broker.url, [
            (f"tasmota/discovery/{MAC}/sensors", json.dumps(SENSORS)),  # may well arrive before the config
            (f"tasmota/discovery/{MAC}/config", json.dumps(CONFIG)),
            (f"tele/{DEVICE}/LWT", "Online")])
        async with MqttProbe(volatile_broker.url, [f"cmnd/{DEVICE}/#"]) as device, running(gateway):
            await wait_for(lambda: (f"cmnd/{DEVICE}/STATE", b"") in device.received, what="the state asked for")
            await device.publish(f"stat/{DEVICE}/RESULT", json.dumps(state))
            await wait_for(lambda: sum(1 for _raw, topic, _c in ctx.emits if topic and "discovery" in topic) >= 3,
                           what="config, sensors and the config with relay states")
            await device.publish(f"stat/{DEVICE}/RESULT", '{"POWER1":"OFF"}')
            await wait_for(lambda: ('{"POWER1":"OFF"}', f"stat/{DEVICE}/RESULT", True) in ctx.emits,
                           what="a later change")
        assert gateway.status()["discovered"] == 1

    asyncio.run(scenario())
    topics = [topic for _raw, topic, _command in ctx.emits]
    assert topics.count(f"tasmota/discovery/{MAC}/config") == 2 and f"tasmota/discovery/{MAC}/sensors" in topics
    sensors = next(json.loads(raw) for raw, topic, _c in ctx.emits if topic and topic.endswith("/sensors"))
    assert sensors == {"t": DEVICE, **SENSORS}, "the edge names the device of a sensors message"
    assert all(command for _raw, topic, command in ctx.emits if topic and "discovery" in topic)

    # the cloud: what the processor stores from what the edge sent, in its order
    envelopes = [Envelope("tas", "tasmota", 1_767_225_600_000 + i, i + 1, f"m-{i}", raw, topic)
                 for i, (raw, topic, _command) in enumerate(ctx.emits)]
    repo = MemoryRepository(None)
    result = Processor(repo, ListMetrics(), {"tasmota": TasmotaInterpreter()}).process(envelopes)
    assert result.failures == []
    node = repo.get(Kind.NODE, f"tas.{DEVICE}")
    assert node is not None and node["name"] == "Living Room Strip"
    others = node["others"]
    assert others["relay_names"] == {"POWER1": "Lamp", "POWER2": "Fan"}
    assert others["friendly_name"] == "Lamp" and others["relays"] == {"POWER1": "relay", "POWER2": "relay"}
    assert (others["ip_address"], others["mac"], others["hostname"], others["module"]) == (
        "192.168.1.61", "A4:CF:12:5F:2A:1C", "living-strip-2652", "Sonoff Dual R2")
    assert node["labels"]["version"] == "13.2.0" and node["state"]["status"] == "up"
    lamp, fan = (repo.get(Kind.FIELD, f"tas.{DEVICE}.Control.{key}") for key in ("POWER1", "POWER2"))
    assert lamp is not None and fan is not None
    assert (lamp["name"], lamp["current"]["value"]) == ("Lamp", False), "named, and the later OFF applied"
    assert (fan["name"], fan["current"]["value"]) == ("Fan", False)
    assert repo.get(Kind.SOURCE, f"tas.{DEVICE}.AM2301") is not None, "the sensors message announces the source"
    assert repo.get(Kind.FIELD, f"tas.{DEVICE}.AM2301.Temperature") is None, "its start-up snapshot is no reading"
    assert node_command_topic(node, "POWER2") == f"cmnd/{DEVICE}/POWER2"


def test_a_custom_full_topic_from_discovery_routes_commands_before_the_device_spoke(volatile_broker: Broker,
                                                                                    tmp_path: Path) -> None:
    ctx = FakeContext("tas", provider="tasmota")
    gateway = build_gateway("tas", {"id": "tas", "reconnectDelay": "1s", "dataDir": str(tmp_path), "provider": {
        "type": "tasmota", "fullTopic": "home/%prefix%/%topic%/", "protocol": {
            "type": "mqtt", "broker": volatile_broker.url}}}, ctx)
    config = {**CONFIG, "t": "porch.light", "dn": "", "fn": ["Porch", None], "rl": [2, 0], "lt_st": 2,
              "ft": "home/%prefix%/%topic%/"}

    async def scenario() -> None:
        async with MqttProbe(volatile_broker.url, ["home/cmnd/#"]) as device, running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await device.publish(f"tasmota/discovery/{MAC}/config", json.dumps(config))
            await wait_for(lambda: ("home/cmnd/porch.light/STATE", b"") in device.received,
                           what="the state asked for on the device's own FullTopic")
            await device.publish("home/stat/porch.light/RESULT", '{"POWER":"ON","Dimmer":40}')
            await wait_for(lambda: sum(1 for _r, t, _c in ctx.emits if t and "discovery" in t) == 2,
                           what="the config with the light's state")

    asyncio.run(scenario())
    envelopes = [Envelope("tas", "tasmota", 1_767_225_600_000 + i, i + 1, f"m-{i}", raw, topic)
                 for i, (raw, topic, _command) in enumerate(ctx.emits)]
    repo = MemoryRepository(None)
    assert Processor(repo, ListMetrics(), {"tasmota": TasmotaInterpreter()}).process(envelopes).failures == []
    node = repo.get(Kind.NODE, "tas.porch_light")
    assert node is not None and node["name"] == "Porch", "no device name: the first friendly name"
    assert node["others"]["light_type"] == "cold_warm" and node["others"]["relays"] == {"POWER": "light"}
    power = repo.get(Kind.FIELD, "tas.porch_light.Control.POWER")
    assert power is not None and (power["name"], power["current"]["value"]) == ("Porch", True)
    assert node_command_topic(node, "POWER") == "home/cmnd/porch.light/POWER"
