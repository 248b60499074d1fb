"""Two edge devices (two things) on one broker, both running a gateway called ``house``: each gets only its own
commands, and neither can speak for the other's gateway.

The broker is a mosquitto whose ACL is the edge IoT policy of the template, translated (the policy variable
``${iot:Connection.Thing.ThingName}`` becomes mosquitto's ``%c``, the client id, which the policy's ``iot:Connect``
pins to the thing name): a device publishes only ``mc/<thing>/up`` and reads only ``mc/<thing>/down``. The cloud
is a subscriber on ``mc/+/up`` (a user of its own, as IoT rules and iot-data are) doing what the ingest rule does
(``ingest_body`` with the topic's thing) and handing the records to the ingest function; its downlinks go out
through the iot-data downlink adapter, whose client publishes on this broker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_iotdata import IotDataDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.identity import GatewayOwners, ingest_body
from chalicelib.core.model import Kind, Record
from chalicelib.core.ops import FieldValue, Op
from chalicelib.core.processor import Processor
from chalicelib.core.providers import default_interpreters
from chalicelib.functions.ingest import Ingest, IngestOutcome
from edge.agent import EdgeAgent
from edge.config import UplinkSection, load_config
from edge.uplink import UplinkError
from edge.uplink.mqtt import MqttUplink
from infra.identity import THING_VARIABLE, edge_policy_document
from mycontroller_protocol.envelope import Downlink, Envelope, encode_downlinks, encode_publish
from tests.integration.edge_helpers import COUNTER, Broker, Collector, counter_gateway, write_config

CLOUD = "cloud"


def policy_acl() -> str:
    """The edge policy as a mosquitto ACL: every device its own topics (``%c``), the cloud user every edge topic."""
    lines: list[str] = []
    for statement in edge_policy_document()["Statement"]:
        access = {"iot:Publish": "write", "iot:Subscribe": "read", "iot:Receive": "read"}.get(statement["Action"])
        if access is None or statement["Effect"] != "Allow":
            continue
        for resource in statement["Resource"]:
            topic = (resource.split(":", 5)[5].split("/", 1)[1].replace("${!", "${").replace(THING_VARIABLE, "%c")
                     .replace("${IngestTopicRule}", "mc_ingest"))  # what Fn::Sub makes of the rule's name
            assert "+" not in topic and "*" not in topic.removesuffix("/*"), f"cannot translate {resource}"
            lines.append(f"pattern {access} {topic.removesuffix('/*') + '/#' if topic.endswith('/*') else topic}")
    return "\n".join([*dict.fromkeys(lines), f"user {CLOUD}", "topic readwrite mc/#", ""])


class Counting:
    """An interpreter for the counter gateways: each message is the value of field ``n1.s1.count``."""

    provider = COUNTER

    def interpret(self, envelope: Envelope, gateway: Record) -> list[Op]:
        return [FieldValue("n1", "s1", "count", int(envelope.raw), "counter")]

    def reply_value(self, gateway: Record, field: Record) -> None:
        return None

    def node_id_response(self, gateway: Record, node_id: int) -> Downlink:
        raise ValueError("counters take no ids")


class BrokerPublisher:
    """An iot-data client publishing on the test broker (what IoT Core does with ``iot-data publish``)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def publish(self, topic: str, qos: int, payload: bytes) -> dict[str, Any]:
        self.collector.publish(topic, payload)
        return {}


class Cloud:
    """The ingest rule and function, and the downlink adapter, over one memory repository."""

    def __init__(self, broker: Broker) -> None:
        self.collector = Collector(broker.host, broker.port, ["mc/+/up"], client_id=CLOUD, username=CLOUD).start()
        self.repository = MemoryRepository(None)
        self.owners = GatewayOwners(self.repository)
        interpreters = {**default_interpreters(), COUNTER: Counting()}
        self.downlink = IotDataDownlink(BrokerPublisher(self.collector), edges=self.owners.edges_of)
        self.ingest = Ingest(Processor(self.repository, NoMetricStore(), interpreters), LocalEventBus("sync"),
                             self.downlink, self.owners)
        self.outcomes: list[IngestOutcome] = []
        self._taken = 0

    def pump(self) -> list[IngestOutcome]:
        """What the IoT rule and the SQS event source do with the publishes received since the last call."""
        messages = self.collector.messages[self._taken:]
        self._taken += len(messages)
        records = [{"messageId": f"m{self._taken}-{index}", "body": ingest_body(topic.split("/")[1], payload)}
                   for index, (topic, payload) in enumerate(messages)]
        if records:
            self.outcomes.append(self.ingest.run(records))
        return self.outcomes

    def refused(self) -> list[tuple[str, str, str]]:
        return [(r.thing, r.gateway_id, r.owner) for outcome in self.outcomes for r in outcome.refused]

    def count(self, gateway: str) -> int | None:
        field = self.repository.get(Kind.FIELD, f"{gateway}.n1.s1.count")
        return None if field is None else int(field["current"]["value"])


async def until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


def agent_config(tmp_path: Path, broker: Broker, thing: str, gateways: list[dict[str, Any]]) -> Path:
    (tmp_path / thing).mkdir()
    return write_config(tmp_path / thing / "edge.yaml", port=broker.port, edge_id=thing, gateways=gateways,
                        linger_ms=10)


def written(tmp_path: Path, thing: str, gateway: str) -> list[str]:
    """The downlinks a counter gateway of that device wrote to its device."""
    path = tmp_path / thing / "data" / "gateways" / gateway / "downlinks.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_two_edges_with_the_same_gateway_id_each_get_only_their_own_commands(make_broker: Callable[..., Broker],
                                                                             tmp_path: Path) -> None:
    broker = make_broker("identity", acl=policy_acl())
    cloud = Cloud(broker)
    site_a = load_config(agent_config(tmp_path, broker, "site-a", [counter_gateway("house", 5, 50)]))
    site_b = load_config(agent_config(tmp_path, broker, "site-b", [counter_gateway("house", 7, 50),
                                                                   counter_gateway("barn", 3, 50)]))

    async def scenario() -> None:
        a, b = EdgeAgent(site_a), EdgeAgent(site_b)
        await a.start()
        try:
            await until(lambda: cloud.pump() and cloud.count("house") == 5, "site-a's house counted to 5")
            assert (cloud.repository.get(Kind.GATEWAY, "house") or {})["edgeId"] == "site-a"  # its first message
            await b.start()
            try:
                await until(lambda: cloud.pump() and cloud.count("barn") == 3 and b.spool.depth == 0
                            and ("site-b", "house", "site-a") in cloud.refused(), "site-b's messages at the cloud")
                assert cloud.count("house") == 5, "site-b's house (counting to 7) changed nothing"
                assert all(not outcome.failed_records for outcome in cloud.outcomes), "refused, never retried"
                assert sum(o.refused_messages for o in cloud.outcomes) >= 7  # its 7 values (and its state)
                assert (cloud.repository.get(Kind.GATEWAY, "barn") or {})["edgeId"] == "site-b"
                await until(lambda: a.uplink.subscribed and b.uplink.subscribed, "both down topics confirmed")

                # the cloud's commands: to the edge that owns each gateway, on that edge's one down topic
                cloud.downlink.send([Downlink("house", COUNTER, "to house"), Downlink("barn", COUNTER, "to barn")])
                await until(lambda: written(tmp_path, "site-a", "house") and written(tmp_path, "site-b", "barn"),
                            "the commands at the devices")
                # a command on site-b's own topic reaches site-b's house; then one more for site-a's house. A device
                # gets its publishes in order, so what crossed over would have come before the later one.
                cloud.collector.publish("mc/site-b/down", encode_downlinks([Downlink("house", COUNTER, "b's own")]))
                cloud.collector.publish("mc/site-a/down", encode_downlinks([Downlink("house", COUNTER, "a's own")]))
                await until(lambda: len(written(tmp_path, "site-a", "house")) == 2
                            and written(tmp_path, "site-b", "house"), "both devices' own commands")
                assert written(tmp_path, "site-a", "house") == ["to house", "a's own"]
                assert written(tmp_path, "site-b", "house") == ["b's own"]
                assert written(tmp_path, "site-b", "barn") == ["to barn"]
            finally:
                await b.stop()
        finally:
            await a.stop()

    try:
        asyncio.run(scenario())
    finally:
        cloud.collector.stop()


def test_a_device_can_neither_publish_nor_read_as_another(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker("identity-acl", acl=policy_acl())
    cloud = Collector(broker.host, broker.port, ["mc/+/up"], client_id=CLOUD, username=CLOUD).start()
    config = UplinkSection(type="mqtt", host=broker.host, port=broker.port, min_reconnect_delay_ms=100,
                           max_reconnect_delay_ms=500)
    forged = encode_publish([Envelope("house", COUNTER, 1, 1, "x-house-1", "99")])

    async def scenario() -> None:
        # site-b, connected as itself, tries site-a's uplink and site-a's commands (beside its own down topic)
        spy = MqttUplink(config, "site-b", "mc/site-a/up", ["mc/site-a/down", "mc/+/down", "mc/site-b/down"])
        received: list[str] = []
        spy.on_downlink(lambda topic, payload: received.append(topic))
        await spy.start()
        try:
            assert await spy.wait_connected(10)
            try:
                await asyncio.wait_for(spy.publish(forged), 10)
                raise AssertionError("a device published on another device's uplink")
            except UplinkError as error:
                assert "NOT_AUTHORIZED" in str(error)
            deadline = asyncio.get_running_loop().time() + 10
            while not received:  # its own topic answers once the SUBSCRIBE (all three filters) is through
                assert asyncio.get_running_loop().time() < deadline, "the device's own down topic never answered"
                cloud.publish("mc/site-b/down", b"ping")
                await asyncio.sleep(0.2)
            pings = len(received)
            cloud.publish("mc/site-a/down", encode_downlinks([Downlink("house", COUNTER, "for site-a only")]))
            cloud.publish("mc/site-b/down", b"after")  # in order behind the other: its arrival closes the window
            await until(lambda: len(received) > pings, "the device's own later command")
            assert set(received) == {"mc/site-b/down"}, "a device read another device's commands"
            assert all(topic != "mc/site-a/up" for topic, _ in cloud.messages)
        finally:
            await spy.stop()

    try:
        asyncio.run(scenario())
    finally:
        cloud.stop()


def test_the_acl_is_the_policy() -> None:
    assert policy_acl().splitlines()[:4] == [
        "pattern write mc/%c/up", "pattern write $aws/rules/mc_ingest/mc/%c/up",
        "pattern write $aws/things/%c/shadow/#", "pattern read mc/%c/down"]
    json.dumps(edge_policy_document())  # a plain JSON document, as the template embeds it
