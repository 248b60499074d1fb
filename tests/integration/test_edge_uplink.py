"""The uplinks against a real mosquitto, and the agent's sender and downlink path through them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from chalicelib.core.publish_reader import decode_publish
from edge.agent import EdgeAgent
from edge.config import UplinkSection, load_config
from edge.gateways.base import Gateway, register_gateway
from edge.uplink import InProcessUplink, UplinkError
from edge.uplink.mqtt import MqttUplink
from mycontroller_protocol.envelope import Downlink, encode_downlinks
from tests.integration.edge_helpers import REPO, Broker, Collector, counter_gateway, wait_until, write_config


async def until(condition: object, timeout: float, what: str) -> None:
    """Async bounded wait: poll ``condition()`` without blocking the loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


def _uplink(broker: Broker, client_id: str, down: list[str] | None = None) -> MqttUplink:
    config = UplinkSection(type="mqtt", host=broker.host, port=broker.port, min_reconnect_delay_ms=100,
                           max_reconnect_delay_ms=500)
    return MqttUplink(config, client_id, f"mc/{client_id}/up", down or [])


def test_publish_returns_once_acknowledged_and_reaches_a_subscriber(broker: Broker) -> None:
    collector = Collector(broker.host, broker.port, ["mc/+/up"]).start()

    async def scenario() -> None:
        uplink = _uplink(broker, "edge-1")
        await uplink.start()
        assert await uplink.wait_connected(10)
        await asyncio.wait_for(uplink.publish(b'{"v":1,"e":[]}'), 10)
        assert uplink.published == 1 and uplink.status()["connected"]
        await uplink.stop()
        assert not uplink.connected

    try:
        asyncio.run(scenario())
        wait_until(lambda: collector.messages, 10, "the publish at the subscriber")
        assert collector.messages == [("mc/edge-1/up", b'{"v":1,"e":[]}')]
    finally:
        collector.stop()


def test_a_publish_made_while_the_broker_is_down_completes_after_it_returns(broker: Broker) -> None:
    collector = Collector(broker.host, broker.port, ["mc/+/up"]).start()

    async def scenario() -> None:
        uplink = _uplink(broker, "edge-2")
        await uplink.start()
        assert await uplink.wait_connected(10)
        broker.stop()
        await until(lambda: not uplink.connected, 10, "the uplink to notice the broker is gone")
        publish = asyncio.ensure_future(uplink.publish(b"during the outage"))
        uplink.last_error = ""
        await until(lambda: uplink.last_error.startswith("connect failed"), 10,
                    "a reconnect attempt to fail while the publish waits")
        assert not publish.done(), "a publish cannot be acknowledged while the broker is down"
        assert uplink.published == 0 and uplink.failed == 0, "the publish waits: neither sent nor given up"
        broker.start()
        await asyncio.wait_for(publish, 20)
        assert uplink.connects >= 2 and uplink.disconnects >= 1
        await uplink.stop()

    try:
        asyncio.run(scenario())
        wait_until(lambda: collector.messages, 15, "the publish at the subscriber after the restart")
        assert collector.messages[-1] == ("mc/edge-2/up", b"during the outage")
    finally:
        collector.stop()


def test_downlinks_arrive_and_subscriptions_are_renewed_after_the_broker_forgot_them(volatile_broker: Broker) -> None:
    broker = volatile_broker  # no persistence: a restart forgets every session and subscription
    received: list[tuple[str, bytes]] = []

    async def scenario() -> None:
        uplink = _uplink(broker, "edge-3", ["mc/gw1/down", "mc/gw2/down"])
        uplink.on_downlink(lambda topic, payload: received.append((topic, payload)))
        await uplink.start()
        assert await uplink.wait_connected(10)
        probe = Collector(broker.host, broker.port, ["nothing/#"], client_id="probe").start()
        try:
            await until(lambda: _delivered(probe, "mc/gw2/down", b"first", received), 10, "the first downlink")
            broker.stop()  # no persistence: the broker forgets every session and subscription
            await until(lambda: not uplink.connected, 10, "the disconnect")
            broker.start()
            await until(lambda: uplink.connected, 15, "the reconnect")
            await until(lambda: _delivered(probe, "mc/gw1/down", b"second", received), 15,
                        "a downlink after the broker restarted without our subscriptions")
        finally:
            probe.stop()
            await uplink.stop()

    asyncio.run(scenario())
    assert ("mc/gw2/down", b"first") in received and ("mc/gw1/down", b"second") in received


def _delivered(probe: Collector, topic: str, payload: bytes, received: list[tuple[str, bytes]]) -> bool:
    """Publish (again) until it shows up: the uplink's SUBSCRIBE may still be on its way after a (re)connect."""
    if (topic, payload) in received:
        return True
    probe.publish(topic, payload)
    return False


def test_a_publish_the_broker_refuses_raises(make_broker: Callable[..., Broker]) -> None:
    broker = make_broker("acl", persistent=False, acl="topic write mc/allowed/#\n")

    async def scenario() -> None:
        uplink = _uplink(broker, "denied")
        await uplink.start()
        assert await uplink.wait_connected(10)
        with pytest.raises(UplinkError, match="NOT_AUTHORIZED"):
            await asyncio.wait_for(uplink.publish(b"x"), 10)
        # (the broker may close the connection right after: the publish's reason is kept apart from last_error)
        assert uplink.failed == 1 and "NOT_AUTHORIZED" in uplink.status()["last_publish_error"]
        await uplink.stop()

    asyncio.run(scenario())


def test_agent_packs_messages_into_bounded_publishes_acks_them_and_routes_downlinks(
        broker: Broker, tmp_path: Path) -> None:
    count = 3000
    config_path = write_config(tmp_path / "edge.yaml", port=broker.port, max_publish_bytes=2000, linger_ms=20,
                               max_publishes_per_s=500,
                               gateways=[counter_gateway("gw-a", count, 5000, commandEvery=50),
                                         counter_gateway("gw-b", 10, 100)])
    config = load_config(config_path)
    collector = Collector(broker.host, broker.port, ["mc/edge-test/up"]).start()

    async def scenario() -> None:
        agent = EdgeAgent(config)
        await agent.start()
        try:
            await until(lambda: _numbers(collector, "gw-a") >= set(range(1, count + 1)), 30, "every message")
            await until(lambda: agent.spool.depth == 0, 10, "the spool to drain")
            await until(lambda: agent.uplink.connected, 10, "the uplink")
            down = encode_downlinks([Downlink("gw-b", "test_counter", "1;2;1;0;2;1"),
                                     Downlink("gw-a", "test_counter", "to a")])
            collector.publish("mc/gw-b/down", encode_downlinks([Downlink("gw-b", "test_counter", "not for us")]))
            collector.publish("mc/edge-test/down", down)  # the device's one down topic, for all its gateways
            downlinks = tmp_path / "data" / "gateways"
            await until(lambda: (downlinks / "gw-b" / "downlinks.txt").exists()
                        and (downlinks / "gw-a" / "downlinks.txt").exists(), 10, "the downlinks at the gateways")
            assert (downlinks / "gw-b" / "downlinks.txt").read_text() == "1;2;1;0;2;1\n"
            assert (downlinks / "gw-a" / "downlinks.txt").read_text() == "to a\n", "routed by the downlink's gateway"
            # what the gateways emit for the downlinks (their echoes) is spooled and sent in turn
            await until(lambda: agent.spool.depth == 0, 10, "the spool to drain after the downlinks")
            status = agent.status()
            assert status["gateways"]["gw-a"]["emitted"] == count
            assert status["sender"]["envelopes"] >= count and status["spool"]["depth"] == 0
        finally:
            await agent.stop()

    try:
        asyncio.run(scenario())
    finally:
        collector.stop()
    publishes = collector.messages
    assert all(len(payload) <= 2000 for _topic, payload in publishes), "a publish exceeded max_publish_bytes"
    assert len(publishes) < count / 10, f"{len(publishes)} publishes for {count} messages: not packed"
    envelopes = collector.envelopes()
    for gateway in ("gw-a", "gw-b"):
        sequences = [e.sequence for e in envelopes if e.gateway_id == gateway]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        assert set(sequences) == set(range(1, max(sequences) + 1))
    states = [json.loads(e.raw) for e in envelopes if e.provider == "edge"]
    assert {"type": "gateway_state", "status": "up", "message": "counting from 1"} in states

    status_cli = subprocess.run([sys.executable, "-m", "edge", "status", "--config", str(config_path)], cwd=REPO,
                                capture_output=True, text=True, timeout=30)
    assert status_cli.returncode == 0, status_cli.stderr
    assert "edge edge-test" in status_cli.stdout and "stopped at" in status_cli.stdout
    assert "gw-a" in status_cli.stdout and f"emitted {count}" in status_cli.stdout
    as_json = subprocess.run([sys.executable, "-m", "edge", "status", "--json", "--config", str(config_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
    assert json.loads(as_json.stdout)["spool"]["depth"] == 0


def _numbers(collector: Collector, gateway: str) -> set[int]:
    return {int(e.raw) for e in collector.envelopes() if e.gateway_id == gateway and e.provider == "test_counter"}


def test_inprocess_uplink_retries_what_the_handler_refused_and_delivers_downlinks(tmp_path: Path) -> None:
    config_path = write_config(tmp_path / "edge.yaml", port=1, gateways=[counter_gateway("gw", 200, 2000)])
    config = load_config(config_path)
    config.uplink.type = "inprocess"
    bodies: list[bytes] = []
    refusals = [3]

    def handler(body: bytes) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise RuntimeError("ingest queue full")
        bodies.append(body)

    async def scenario() -> None:
        agent = EdgeAgent(config, publish_handler=handler)
        assert isinstance(agent.uplink, InProcessUplink)
        uplink = agent.uplink
        await agent.start()
        try:
            await until(lambda: sum(len(decode_publish(b)[0]) for b in bodies) >= 201 and agent.spool.depth == 0,
                        30, "every message through the handler")
            sender = threading.Thread(target=uplink.deliver_downlink,
                                      args=(encode_downlinks([Downlink("gw", "test_counter", "hello")]),))
            sender.start()
            sender.join()
            path = tmp_path / "data" / "gateways" / "gw" / "downlinks.txt"
            await until(path.exists, 10, "the downlink at the gateway")
            assert path.read_text() == "hello\n"
            assert agent.sender.retries >= 1 and uplink.failed == 3
        finally:
            await agent.stop()

    asyncio.run(scenario())
    envelopes = [e for body in bodies for e in decode_publish(body)[0]]
    numbers = [int(e.raw) for e in envelopes if e.provider == "test_counter"]
    assert numbers == list(range(1, 201)), "in order, none lost, none twice"


def test_a_downlink_published_while_the_agent_was_away_waits_in_its_session(broker: Broker) -> None:
    async def scenario() -> None:
        first = _uplink(broker, "edge-4", ["mc/gw9/down"])
        await first.start()
        assert await first.wait_connected(10)
        await until(lambda: first.subscribed, 10, "the SUBACK for the down topic")
        await first.stop()

        probe = Collector(broker.host, broker.port, ["nothing/#"], client_id="probe-4").start()
        probe.publish("mc/gw9/down", b"queued while away")
        probe.stop()

        received: list[tuple[str, bytes]] = []
        second = _uplink(broker, "edge-4", ["mc/gw9/down"])
        second.on_downlink(lambda topic, payload: received.append((topic, payload)))
        await second.start()
        try:
            await until(lambda: received, 10, "the queued downlink")
            assert received == [("mc/gw9/down", b"queued while away")] and second.session_present
        finally:
            await second.stop()

    asyncio.run(scenario())


@register_gateway("test_crashing")
class _CrashingGateway(Gateway):
    """Emits one line, then fails like a plugin bug would, twice; the third run keeps going."""

    provider: ClassVar[str] = "test_crashing"
    runs = 0

    async def run(self) -> None:
        type(self).runs += 1
        self.ctx.emit(f"run {type(self).runs}")
        if type(self).runs <= 2:
            raise RuntimeError(f"bug number {type(self).runs}")
        self.ctx.set_state("up", "third time lucky")
        await asyncio.Event().wait()

    async def send(self, downlink: Downlink) -> None:
        raise OSError("device unplugged")


def test_a_crashing_plugin_is_restarted_and_its_errors_are_reported(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "edge.yaml", port=1, gateways=[
        {"id": "buggy", "provider": {"type": "test_crashing"}}]))
    config.uplink.type = "inprocess"
    bodies: list[bytes] = []

    async def scenario() -> None:
        agent = EdgeAgent(config, publish_handler=bodies.append)
        await agent.start()
        try:
            await until(lambda: _CrashingGateway.runs >= 3 and agent.contexts["buggy"].state["status"] == "up", 15,
                        "the third run")
            assert isinstance(agent.uplink, InProcessUplink)
            agent.uplink.deliver_downlink(encode_downlinks([Downlink("buggy", "test_crashing", "x")]))
            await until(lambda: agent.contexts["buggy"].downlink_errors == 1, 5, "the failed downlink to be counted")
            await until(lambda: agent.spool.depth == 0, 5, "the spool to drain")
        finally:
            await agent.stop()

    asyncio.run(scenario())
    envelopes = [e for body in bodies for e in decode_publish(body)[0]]
    assert [e.raw for e in envelopes if e.provider == "test_crashing"] == ["run 1", "run 2", "run 3"]
    states = [json.loads(e.raw) for e in envelopes if e.provider == "edge"]
    assert [s["status"] for s in states] == ["error", "error", "up"]
    assert "bug number 1" in states[0]["message"]


@pytest.mark.parametrize("uplink_type", ["mqtt", "aws_iot"])
def test_mutual_tls_to_a_broker_that_requires_a_client_certificate(
        make_broker: Callable[..., Broker], certificates: dict[str, Path], uplink_type: str) -> None:
    """The TLS paths: our own TLS context (``mqtt`` + ``tls``) and the awsiot builder (``aws_iot``)."""
    certs = certificates
    broker = make_broker("tls", persistent=False, listener=[
        f"cafile {certs['ca.pem']}", f"certfile {certs['server.pem']}", f"keyfile {certs['server.key']}",
        "require_certificate true"])
    tls = {"ca": str(certs["ca.pem"]), "cert": str(certs["client.pem"]), "key": str(certs["client.key"])}

    async def scenario(config: UplinkSection) -> MqttUplink:
        uplink = MqttUplink(config, f"tls-{uplink_type}", "mc/tls/up", ["mc/tls-gw/down"])
        await uplink.start()
        try:
            assert await uplink.wait_connected(15), f"no TLS connection: {uplink.last_error}"
            await asyncio.wait_for(uplink.publish(b"over tls"), 10)
            await until(lambda: uplink.subscribed, 10, "the SUBACK over TLS")
        finally:
            await uplink.stop()
        return uplink

    config = UplinkSection(type=uplink_type, host="localhost", port=broker.port, tls=tls)  # type: ignore[arg-type]
    uplink = asyncio.run(scenario(config))
    assert uplink.published == 1
    without_cert = UplinkSection(type="mqtt", host="localhost", port=broker.port,
                                 tls={"ca": str(certs["ca.pem"])},  # type: ignore[arg-type]
                                 min_reconnect_delay_ms=100, max_reconnect_delay_ms=200)

    async def refused() -> str:
        uplink = MqttUplink(without_cert, "no-cert", "mc/x/up", [])
        await uplink.start()
        try:
            await until(lambda: uplink.last_error, 10, "the refused handshake")
            return uplink.last_error if not uplink.connected else "connected"
        finally:
            await uplink.stop()

    assert asyncio.run(refused()).startswith("connect failed"), "a broker requiring certificates let us in"
