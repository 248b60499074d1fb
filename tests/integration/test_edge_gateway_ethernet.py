"""MySensors ethernet gateway against a real TCP server playing a MySensors ethernet gateway (port 5003 style)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from tests.integration.gateway_helpers import FakeContext, FakeEthernetGateway, free_port, running, wait_for


def _config(port: int, tmp_path: Path, **provider: Any) -> dict[str, Any]:
    return {"id": "eth1", "reconnectDelay": "1s", "dataDir": str(tmp_path),
            "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet", "server": f"tcp://127.0.0.1:{port}"},
                         **provider}}


def test_lines_downlinks_and_reconnect_after_the_server_goes_away(tmp_path: Path) -> None:
    port = free_port()
    server = FakeEthernetGateway(port)
    ctx = FakeContext("eth1")
    gateway = build_gateway("eth1", _config(port, tmp_path), ctx)

    async def scenario() -> None:
        async with running(gateway):
            # nobody listens yet: the gateway reports down and keeps trying
            await wait_for(lambda: ctx.status == "down", what="down while the server is missing")
            await server.start()
            await wait_for(lambda: ctx.status == "up" and server.writers, timeout=15, what="connected")
            await server.say("0;255;3;0;14;Gateway startup complete.", "12;255;0;0;17;2.3.2", "garbage",
                             "12;1;1;0;0;19.8")
            await wait_for(lambda: "12;1;1;0;0;19.8" in ctx.lines, what="lines emitted")
            assert ctx.lines == ["0;255;3;0;14;Gateway startup complete.", "12;255;0;0;17;2.3.2", "12;1;1;0;0;19.8"]
            await server.say("12;255;3;0;6;")
            await wait_for(lambda: "12;255;3;0;6;M" in server.received, what="I_CONFIG answered 'M' (default)")

            await gateway.send(Downlink("eth1", "mysensors_v2", "12;4;1;0;3;60", node_id="12", key="12;4;3"))
            await wait_for(lambda: "12;4;1;0;3;60" in server.received, what="downlink received")

            server.drop_clients()  # the gateway rebooted
            await wait_for(lambda: ctx.status == "down", what="down after the connection dropped")
            await wait_for(lambda: ctx.status == "up" and server.connections == 2, timeout=15, what="reconnected")
            await server.say("12;1;1;0;0;20.1")
            await wait_for(lambda: "12;1;1;0;0;20.1" in ctx.lines, what="line after reconnect")
        await server.stop()

    asyncio.run(scenario())
    assert [s for s, _ in ctx.states][:4] == ["down", "up", "down", "up"]


def test_ack_requested_downlink_is_retried_until_the_echo_comes(tmp_path: Path) -> None:
    port = free_port()
    server = FakeEthernetGateway(port)
    ctx = FakeContext("eth1")
    gateway = build_gateway("eth1", _config(port, tmp_path, retryCount=3, timeout="300ms"), ctx)
    copies: list[str] = []

    def node(line: str, writer: asyncio.StreamWriter) -> None:
        if line.startswith("12;3;1;1;2;"):
            copies.append(line)
            if len(copies) == 2:  # the first copy is lost on the radio; the second one is echoed
                writer.write((line + "\n").encode())

    server.on_line = node

    async def scenario() -> None:
        await server.start()
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="connected")
            await gateway.send(Downlink("eth1", "mysensors_v2", "12;3;1;1;2;1", node_id="12"))
            assert copies == [] or copies == ["12;3;1;1;2;1"]  # written; its ack is awaited in the background
            await wait_for(lambda: "12;3;1;1;2;1" in ctx.lines, what="the echo goes up too")
            await asyncio.sleep(0.5)
            assert copies == ["12;3;1;1;2;1", "12;3;1;1;2;1"]  # not written again once echoed
            status = gateway.status()
            assert status["ack_timeouts"] == 1 and status["ack_failures"] == 0
        await server.stop()

    asyncio.run(scenario())
