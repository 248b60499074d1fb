"""Internal-message acks over a real pseudo-terminal: a node that does not answer costs a bounded number of tries,
and holds up no other node's command."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from tests.integration.gateway_helpers import FakeContext, PtyDevice, Received, running, wait_for


def _config(link: Path, data: Path, **provider: Any) -> dict[str, Any]:
    return {"id": "gw1", "reconnectDelay": "1s", "dataDir": str(data),
            "provider": {"type": "mysensors_v2", "enableInternalMessageAck": True, **provider,
                         "protocol": {"type": "serial", "portname": str(link)}}}


def _downlink(raw: str, node: str) -> Downlink:
    return Downlink("gw1", "mysensors_v2", raw, node_id=node)


def test_a_silent_node_gets_a_bounded_number_of_tries_and_holds_up_nobody(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("gw1")
    gateway: Any = build_gateway("gw1", _config(device.link, tmp_path / "data", retryCount=2, timeout="300ms"), ctx)
    reboot_12 = "12;255;3;1;13;"

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            received = Received(device)
            # node 12 is off; a reboot for it, then a switch command for node 13 right behind
            await gateway.send(_downlink("12;255;3;0;13;", "12"))
            started = time.monotonic()
            await gateway.send(_downlink("13;1;1;0;2;1", "13"))
            await wait_for(received.having(lambda line: line == "13;1;1;0;2;1"), what="node 13's command")
            assert time.monotonic() - started < 0.28, "node 13's command waited for node 12's ack"

            # node 12 gets its reboot 1 + retryCount times, 300 ms apart, then the gateway gives up
            await wait_for(lambda: gateway.status()["ack_failures"] == 1, what="given up")
            assert received().count(reboot_12) == 3
            assert gateway.status()["ack_timeouts"] == 3

            # while it stays silent, each further command gets one try only
            await gateway.send(_downlink("12;255;3;0;18;", "12"))
            await wait_for(lambda: gateway.status()["ack_failures"] == 2, what="given up at once")
            assert received().count("12;255;3;1;18;") == 1

            # once it is heard from, its commands are retried again, and an echo ends the tries
            device.write("12;1;1;0;0;21.5\n")
            await wait_for(lambda: "12;1;1;0;0;21.5" in ctx.lines, what="node 12 heard")
            await gateway.send(_downlink("12;255;3;0;13;", "12"))
            await wait_for(lambda: received().count(reboot_12) == 5, what="a retry")
            device.write(reboot_12 + "\n")  # the echo
            await asyncio.sleep(0.8)
            assert received().count(reboot_12) == 5 and gateway.status()["ack_failures"] == 2
        device.unplug()

    asyncio.run(scenario())
