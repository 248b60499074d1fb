"""Gateway configs from the cloud over a real broker: mosquitto plays AWS IoT Core, the test plays the shadow
service (it answers ``get`` and publishes deltas on ``$aws/things/<thing>/shadow/update/delta``), a TCP server
plays a MySensors ethernet gateway. The agent starts the gateway the delta names, reports what it runs, rejects
a bad config while the gateway keeps running, and stops the gateway when the cloud removes it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.core.publish_reader import decode_publish
from edge.agent import EdgeAgent
from edge.config import parse_config
from mycontroller_protocol.shadow import config_hash
from tests.integration.edge_helpers import Broker, Collector, free_port
from tests.integration.gateway_helpers import FakeEthernetGateway

THING = "pi-shadow"
SHADOW = f"$aws/things/{THING}/shadow"  # the classic shadow (edge.shadow_name: "")


async def until(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return value


def ethernet(port: int, **protocol: Any) -> dict[str, Any]:
    return {"enabled": True, "reconnectDelay": "1s",
            "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet",
                                                              "server": f"tcp://127.0.0.1:{port}", **protocol}}}


def readings(collector: Collector) -> list[tuple[str, str]]:
    """(gateway, raw) of every envelope that reached the up topic."""
    return [(e.gateway_id, e.raw) for topic, payload in collector.messages if topic.endswith("/up")
            for e in decode_publish(payload)[0]]


def reports(collector: Collector) -> list[dict[str, Any]]:
    return [json.loads(payload)["state"]["reported"] for topic, payload in collector.messages
            if topic == f"{SHADOW}/update"]


def test_a_delta_starts_a_gateway_a_bad_one_is_rejected_and_a_removal_stops_it(volatile_broker: Broker,
                                                                                tmp_path: Path) -> None:
    broker = volatile_broker
    cloud = Collector(broker.host, broker.port, [f"{SHADOW}/get", f"{SHADOW}/update", "mc/+/up"],
                      client_id="shadow-service").start()
    port = free_port()
    device = FakeEthernetGateway(port)
    config = parse_config({
        "edge": {"id": THING, "data_dir": str(tmp_path / "edge"), "cloud_config": True, "shadow_name": ""},
        "uplink": {"type": "mqtt", "host": broker.host, "port": broker.port, "min_reconnect_delay_ms": 100,
                   "max_reconnect_delay_ms": 500, "linger_ms": 0},
    })

    def delta(version: int, gateways: dict[str, Any], config_version: str) -> None:
        cloud.publish(f"{SHADOW}/update/delta", json.dumps(
            {"version": version, "state": {"configVersion": config_version, "gateways": gateways}}))

    async def scenario() -> None:
        await device.start()
        agent = EdgeAgent(config)
        await agent.start()
        try:
            await until(lambda: any(t == f"{SHADOW}/get" for t, _ in cloud.messages), "the agent asking for its shadow")
            cloud.publish(f"{SHADOW}/get/rejected", json.dumps({"code": 404, "message": "No shadow exists"}))

            good = ethernet(port)
            delta(2, {"eth": good}, "v1")
            await until(lambda: device.writers, "the agent connecting to the ethernet gateway")
            await until(lambda: any(r["configVersion"] == "v1" for r in reports(cloud)), "the report of v1")
            report = next(r for r in reports(cloud) if r["configVersion"] == "v1")
            assert report["applied"] == {"eth": {"status": "running", "message": "", "hash": config_hash(good)}}

            await device.say("12;1;1;0;0;21.5")  # the gateway runs: its device's line goes up
            await until(lambda: ("eth", "12;1;1;0;0;21.5") in readings(cloud), "the device's reading at the cloud")

            bad = {"enabled": True, "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet"}}}
            delta(3, {"eth": bad}, "v2")
            await until(lambda: any(r["configVersion"] == "v2" for r in reports(cloud)), "the report of v2")
            rejected = next(r for r in reports(cloud) if r["configVersion"] == "v2")["applied"]["eth"]
            assert rejected["status"] == "rejected" and "needs 'server'" in rejected["message"]
            assert device.connections == 1 and device.writers  # still connected, never restarted
            await device.say("12;1;1;0;0;21.7")
            await until(lambda: ("eth", "12;1;1;0;0;21.7") in readings(cloud), "still running")

            shadow = agent.shadow
            assert shadow is not None
            interpreted = shadow.messages
            delta(1, {}, "stale")  # an old message redelivered: ignored
            await until(lambda: shadow.messages > interpreted, "the agent to read the stale delta")
            assert shadow.version_seen == 3 and shadow.config_version == "v2"
            assert "eth" in agent.gateways

            delta(4, {}, "v3")  # the cloud removed the gateway
            await until(lambda: "eth" not in agent.gateways, "the gateway stopped")
            await until(lambda: any(r["configVersion"] == "v3" for r in reports(cloud)), "the report of v3")
            assert next(r for r in reports(cloud) if r["configVersion"] == "v3")["applied"] == {"eth": None}
            # applies run one at a time in arrival order: had the stale delta been applied, its report would be
            # here before v3's (None: the report of "no shadow", nothing assigned; a version may be reported
            # again when a gateway's state changes)
            versions = [r["configVersion"] for r in reports(cloud)]
            assert list(dict.fromkeys(versions)) == [None, "v1", "v2", "v3"], reports(cloud)
        finally:
            await agent.stop()
            await device.stop()

    try:
        asyncio.run(scenario())
    finally:
        cloud.stop()
    saved = json.loads((tmp_path / "edge" / "cloud_config.json").read_text())
    assert saved["gateways"] == {} and saved["configVersion"] == "v3"


def test_a_config_changed_while_offline_arrives_with_get_on_connect(volatile_broker: Broker, tmp_path: Path) -> None:
    """The shadow service answers ``get`` with the whole document; the agent applies it and reports."""
    broker = volatile_broker
    port = free_port()
    device = FakeEthernetGateway(port)
    wanted = {"eth": ethernet(port)}
    answered: list[bool] = []
    cloud = Collector(broker.host, broker.port, [f"{SHADOW}/get", f"{SHADOW}/update"],
                      client_id="shadow-service-2").start()
    config = parse_config({
        "edge": {"id": THING, "data_dir": str(tmp_path / "edge"), "cloud_config": True, "shadow_name": ""},
        "uplink": {"type": "mqtt", "host": broker.host, "port": broker.port},
    })

    async def scenario() -> None:
        await device.start()
        agent = EdgeAgent(config)
        await agent.start()
        try:
            await until(lambda: any(t == f"{SHADOW}/get" for t, _ in cloud.messages), "the get request")
            cloud.publish(f"{SHADOW}/get/accepted", json.dumps({"version": 7, "state": {
                "desired": {"configVersion": "v7", "gateways": wanted}, "reported": {}}}))
            answered.append(True)
            await until(lambda: device.writers, "the gateway from the get answer")
            await until(lambda: reports(cloud), "the report")
            assert reports(cloud)[-1]["configVersion"] == "v7"
            assert reports(cloud)[-1]["applied"]["eth"]["status"] == "running"
        finally:
            await agent.stop()
            await device.stop()

    try:
        asyncio.run(scenario())
    finally:
        cloud.stop()
    assert answered
