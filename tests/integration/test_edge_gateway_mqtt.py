"""MQTT gateways against a real mosquitto: MySensors MQTT, Tasmota, generic JSON, and a broker restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from tests.integration.edge_helpers import Broker
from tests.integration.gateway_helpers import FakeContext, MqttProbe, running, wait_for


def _gateway(gateway_id: str, provider: dict[str, Any], tmp_path: Path) -> tuple[Any, FakeContext]:
    ctx = FakeContext(gateway_id)
    config = {"id": gateway_id, "reconnectDelay": "1s", "dataDir": str(tmp_path), "provider": provider}
    return build_gateway(gateway_id, config, ctx), ctx


def test_mysensors_mqtt_gateway_speaks_lines_to_the_cloud_and_topics_to_the_broker(
        volatile_broker: Broker, tmp_path: Path) -> None:
    gateway, ctx = _gateway("msmqtt", {
        "type": "mysensors_v2", "unitSystem": "metric",
        "protocol": {"type": "mqtt", "broker": volatile_broker.url, "subscribe": "mygateway1-out/#",
                     "publish": "mygateway1-in", "qos": 0}}, tmp_path)

    async def scenario() -> None:
        async with MqttProbe(volatile_broker.url, ["mygateway1-in/#"]) as device, running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await device.publish("mygateway1-out/0/255/3/0/14", "Gateway startup complete.")
            await device.publish("mygateway1-out/4/1/1/0/0", "21.5")
            await device.publish("mygateway1-out/4/x/1/0/0", "1")  # not MySensors: counted, not emitted
            await device.publish("mygateway1-out/4/255/3/0/1", "")  # I_TIME request
            await wait_for(lambda: "4;255;3;0;1;" in ctx.lines, what="I_TIME request emitted")
            assert ctx.lines == ["0;255;3;0;14;Gateway startup complete.", "4;1;1;0;0;21.5", "4;255;3;0;1;"]
            assert gateway.status()["invalid"] == 1

            answers = await wait_for(lambda: [p for t, p in device.received if t == "mygateway1-in/4/255/3/0/1"],
                                     what="I_TIME answered on the in topic")
            assert abs(int(answers[0]) - time.time()) < 60  # UTC

            await gateway.send(Downlink("msmqtt", "mysensors_v2", "4;3;1;0;2;1", node_id="4"))
            await wait_for(lambda: ("mygateway1-in/4/3/1/0/2", b"1") in device.received, what="downlink published")

    asyncio.run(scenario())


def test_tasmota_payloads_go_up_with_their_topic_and_commands_go_out_as_given(
        volatile_broker: Broker, tmp_path: Path) -> None:
    gateway, ctx = _gateway("tas", {"type": "tasmota", "protocol": {"type": "mqtt", "broker": volatile_broker.url}},
                            tmp_path)
    sensor = '{"Time":"2026-07-01T10:00:00","AM2301":{"Temperature":22.4,"Humidity":48.1},"TempUnit":"C"}'

    async def scenario() -> None:
        async with MqttProbe(volatile_broker.url, ["cmnd/#"]) as device, running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await device.publish("tele/tasmota_ABC/LWT", "Online")
            await device.publish("cmnd/tasmota_ABC/POWER", "ON")  # someone else's command: not ours to report
            await device.publish("tele/tasmota_ABC/SENSOR", sensor)
            await device.publish("stat/tasmota_ABC/RESULT", '{"POWER":"ON"}')
            await wait_for(lambda: len(ctx.emits) >= 3, what="three messages up")
            assert ctx.emits == [
                ("Online", "tele/tasmota_ABC/LWT", False),
                (sensor, "tele/tasmota_ABC/SENSOR", False),
                ('{"POWER":"ON"}', "stat/tasmota_ABC/RESULT", True),  # a command's result: kept when the spool is full
            ]
            await gateway.send(Downlink("tas", "tasmota", "OFF", node_id="tasmota_ABC",
                                        topic="cmnd/tasmota_ABC/POWER"))
            await wait_for(lambda: ("cmnd/tasmota_ABC/POWER", b"OFF") in device.received, what="command published")

    asyncio.run(scenario())


def test_generic_mqtt_maps_json_to_fields_and_survives_bad_json(volatile_broker: Broker, tmp_path: Path) -> None:
    gateway, ctx = _gateway("home", {
        "type": "generic",
        "protocol": {"type": "mqtt", "broker": volatile_broker.url, "subscribe": "home/+/sensors",
                     "publish": "home/{node}/set/{field}"},
        "mappings": [{"topic": "home/+/sensors", "node": "{1}", "source": "climate", "nodeName": "$.room",
                      "fields": [
                          {"path": "$.temperature", "id": "temperature", "metricType": "gauge_float", "unit": "°C",
                           "name": "Temperature"},
                          {"path": "$.readings.humidity", "id": "humidity", "metricType": "gauge_float",
                           "unit": "%"},
                          {"path": "$.window_open", "id": "window", "metricType": "binary"},
                      ]}]}, tmp_path)

    async def scenario() -> None:
        async with MqttProbe(volatile_broker.url, ["home/+/set/#"]) as device, running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await device.publish("home/kitchen/sensors", "{not json")
            await device.publish("home/kitchen/sensors", json.dumps(
                {"room": "Kitchen", "temperature": 22.5, "readings": {"humidity": 51.0}, "window_open": False}))
            await wait_for(lambda: len(ctx.lines) >= 3, what="three values")
            assert [json.loads(line) for line in ctx.lines] == [
                {"n": "kitchen", "s": "climate", "f": "temperature", "v": 22.5, "m": "gauge_float", "u": "°C",
                 "nn": "Kitchen", "fn": "Temperature"},
                {"n": "kitchen", "s": "climate", "f": "humidity", "v": 51.0, "m": "gauge_float", "u": "%",
                 "nn": "Kitchen"},
                {"n": "kitchen", "s": "climate", "f": "window", "v": False, "m": "binary", "u": "", "nn": "Kitchen"},
            ]
            status = gateway.status()
            assert status["invalid_json"] == 1 and status["connected"]

            await gateway.send(Downlink("home", "mc_json", json.dumps({"n": "kitchen", "s": "climate",
                                                                       "f": "window", "v": True})))
            await wait_for(lambda: ("home/kitchen/set/window", b"true") in device.received, what="set published")

    asyncio.run(scenario())


def test_gateways_recover_when_the_broker_restarts(volatile_broker: Broker, tmp_path: Path) -> None:
    gateway, ctx = _gateway("tas", {"type": "tasmota", "protocol": {"type": "mqtt", "broker": volatile_broker.url}},
                            tmp_path)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            volatile_broker.stop()
            await wait_for(lambda: ctx.status == "down", what="down while the broker is away")
            with pytest.raises(ConnectionError):
                await gateway.send(Downlink("tas", "tasmota", "ON", topic="cmnd/plug/POWER"))
            volatile_broker.start()
            await wait_for(lambda: ctx.status == "up", timeout=20, what="up again")
            async with MqttProbe(volatile_broker.url, ["cmnd/#"]) as device:
                await device.publish("tele/plug/STATE", '{"POWER":"ON"}')  # subscriptions were renewed
                await wait_for(lambda: ("{\"POWER\":\"ON\"}", "tele/plug/STATE") in
                               [(raw, topic) for raw, topic, _ in ctx.emits], what="message after the restart")
                await gateway.send(Downlink("tas", "tasmota", "ON", topic="cmnd/plug/POWER"))
                await wait_for(lambda: ("cmnd/plug/POWER", b"ON") in device.received, what="command after restart")

    asyncio.run(scenario())
    assert [status for status, _ in ctx.states] == ["up", "down", "up", "down"]
