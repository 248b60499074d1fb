"""MySensors serial gateway against a pseudo-terminal with a scripted MySensors gateway on the far end.

The gateway opens a symlink (as a udev rule gives /dev/ttyMySensors); the test writes what a real
MySensors serial gateway prints and reads what the edge writes back. Unplugging is closing the pty;
plugging back is a new pty behind the same symlink.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from tests.integration.edge_helpers import AgentProcess, Broker, Collector, wait_until, write_config
from tests.integration.gateway_helpers import FakeContext, PtyDevice, Received, running, wait_for


def _config(link: Path, tmp_path: Path, **provider: Any) -> dict[str, Any]:
    return {
        "id": "serial1",
        "reconnectDelay": "1s",
        "dataDir": str(tmp_path / "data"),
        "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": str(link),
                                                           "baudRate": 115200, "transmitPreDelay": "5ms"},
                     **provider},
    }


def test_lines_flow_garbage_is_dropped_and_time_and_config_are_answered_at_the_edge(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("serial1")
    gateway = build_gateway("serial1", _config(device.link, tmp_path, timezone="Asia/Kolkata",
                                               unitSystem="imperial"), ctx)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            received = Received(device)
            device.write("0;255;3;0;14;Gateway startup complete.\n")
            device.write("1;1;1;0;0;21.5\r\n")
            device.write("hello, I am not MySensors\n")
            device.write("1;2;1;0;1;4")  # a line split across two reads
            await asyncio.sleep(0.05)
            device.write("5.5\n")
            device.write(b"\x00\xff\xfe;;;\n")
            device.write("5;255;3;0;1;\n")  # I_TIME request
            device.write("5;255;3;0;6;0\n")  # I_CONFIG request
            await wait_for(lambda: "5;255;3;0;6;0" in ctx.lines, what="I_CONFIG request emitted")
            assert ctx.lines == ["0;255;3;0;14;Gateway startup complete.", "1;1;1;0;0;21.5", "1;2;1;0;1;45.5",
                                 "5;255;3;0;1;", "5;255;3;0;6;0"]
            assert gateway.status()["invalid"] == 2
            # readings may be evicted from a full spool; node facts and requests may not
            assert [command for _, _, command in ctx.emits] == [True, False, False, True, True]

            time_answer = (await wait_for(received.having(lambda x: x.startswith("5;255;3;0;1;")),
                                          what="I_TIME answer"))[0]
            local_seconds = int(time_answer.rsplit(";", 1)[1])
            assert abs(local_seconds - (time.time() + 5.5 * 3600)) < 60  # India: UTC+5:30, no DST
            await wait_for(received.having(lambda x: x == "5;255;3;0;6;I"), what="I_CONFIG answer 'I'")

            await gateway.send(Downlink("serial1", "mysensors_v2", "1;3;1;0;2;1", node_id="1", key="1;3;2"))
            await wait_for(received.having(lambda x: x == "1;3;1;0;2;1"), what="downlink on the wire")
            await gateway.send(Downlink("serial1", "mysensors_v2", "not a line", node_id="1"))
            await gateway.send(Downlink("serial1", "mysensors_v2", "1;255;3;0;18;", node_id="1"))
            await wait_for(received.having(lambda x: x == "1;255;3;0;18;"), what="heartbeat request")
            assert "not a line" not in received()
            assert gateway.status()["answered_locally"] == 2
        device.unplug()

    asyncio.run(scenario())
    assert ctx.states[-1][0] == "down"


def test_unplugged_device_goes_down_and_comes_back_at_the_same_path(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("serial1")
    gateway: Any = build_gateway("serial1", _config(device.link, tmp_path), ctx)
    opens: list[float] = []  # every attempt to open the port (the gateway makes a new transport for each)
    make_transport = gateway.make_transport

    def counted() -> Any:
        opens.append(time.monotonic())
        return make_transport()

    gateway.make_transport = counted

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            device.write("1;1;1;0;0;20.0\n")
            await wait_for(lambda: "1;1;1;0;0;20.0" in ctx.lines, what="first reading")

            device.unplug()
            await wait_for(lambda: ctx.status == "down", what="state down after unplug")
            assert not gateway.status()["connected"]
            attempts = len(opens)
            await wait_for(lambda: len(opens) >= attempts + 2, what="two re-opens while nothing is at the path")
            assert ctx.status == "down" and not gateway.status()["connected"]
            assert [status for status, _ in ctx.states] == ["up", "down"], "a failed re-open is no new state"

            device.plug()
            await wait_for(lambda: ctx.status == "up", timeout=15, what="state up after replug")
            device.write("1;1;1;0;0;20.5\n")
            await wait_for(lambda: "1;1;1;0;0;20.5" in ctx.lines, what="reading after replug")
            received = Received(device)
            await gateway.send(Downlink("serial1", "mysensors_v2", "1;3;1;0;2;0", node_id="1"))
            await wait_for(received.having(lambda x: x == "1;3;1;0;2;0"), what="downlink after replug")
        device.unplug()

    asyncio.run(scenario())
    statuses = [status for status, _ in ctx.states]
    assert statuses[:3] == ["up", "down", "up"]
    assert ctx.states[1][1]  # the down state says why


def test_no_line_is_lost_when_the_port_is_opened_or_reopened(tmp_path: Path) -> None:
    """What the device prints while the agent is not reading (starting, restarting) is read once it opens the port:
    opening keeps the tty's input buffer, and a stopped gateway leaves unread lines in it."""
    device = PtyDevice(tmp_path / "ttyMySensors")
    readings = [f"{1 + i % 50};1;1;0;0;{i}" for i in range(377 * 2 + 40)]
    device.write("".join(line + "\n" for line in readings[:377]))  # before the gateway ever opens the port

    async def scenario() -> None:
        first = FakeContext("serial1")
        async with running(build_gateway("serial1", _config(device.link, tmp_path), first)):
            await wait_for(lambda: len(first.lines) >= 377, what="the lines written before the port was opened")
            device.write("".join(line + "\n" for line in readings[377:397]))
            await wait_for(lambda: len(first.lines) >= 397, what="the lines written while open")
        device.write("".join(line + "\n" for line in readings[397:]))  # while the agent restarts
        second = FakeContext("serial1")
        async with running(build_gateway("serial1", _config(device.link, tmp_path), second)):
            await wait_for(lambda: len(second.lines) >= len(readings) - 397, what="the lines written while stopped")
        assert first.lines == readings[:397]
        assert second.lines == readings[397:]

    asyncio.run(scenario())
    device.unplug()


def test_lines_written_while_the_agent_restarts_all_reach_the_broker(tmp_path: Path, broker: Broker) -> None:
    """The issue as a user met it: a serial gateway keeps printing while the agent restarts (systemctl restart);
    every line reaches the cloud, once, in order."""
    device = PtyDevice(tmp_path / "ttyMySensors")
    readings = [f"{1 + i % 50};1;1;0;0;{i}" for i in range(1000)]
    device.write("".join(line + "\n" for line in readings[:100]))  # before the agent's first start
    config = write_config(tmp_path / "edge.yaml", port=broker.port, gateways=[
        {"id": "serial1", "provider": {"type": "mysensors_v2", "protocol": {
            "type": "serial", "portname": str(device.link), "baudRate": 115200}}}])
    collector = Collector(broker.host, broker.port, ["mc/edge-test/up"]).start()
    agent = AgentProcess(config).start()

    def arrived() -> list[str]:
        return [e.raw for e in collector.envelopes() if e.provider == "mysensors_v2"]

    try:
        wait_until(lambda: len(arrived()) >= 100, 30, "the lines written before the agent started")
        device.write("".join(line + "\n" for line in readings[100:300]))
        wait_until(lambda: len(arrived()) >= 300, 30, "the lines written while it ran")
        assert agent.terminate() == 0
        device.write("".join(line + "\n" for line in readings[300:677]))  # 377 lines while it is down
        agent.start()
        device.write("".join(line + "\n" for line in readings[677:]))
        wait_until(lambda: len(set(arrived())) >= len(readings), 30, "every line after the restart")
    finally:
        agent.kill()
        collector.stop()
        device.unplug()
    first = list(dict.fromkeys(arrived()))  # duplicates (a publish resent) would be dropped by the cloud
    assert first == readings
