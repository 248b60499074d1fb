"""Smart sleep over a real pseudo-terminal: a command for a sleeping node reaches it in its awake window.

The scripted node behaves as MySensors' ``smartSleep()``: it reports, says I_PRE_SLEEP_NOTIFICATION with the
milliseconds it will listen, listens that long, and sleeps. Anything written to it after that is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from tests.integration.gateway_helpers import FakeContext, PtyDevice, Received, running, wait_for

WINDOW_MS = 500


def _config(link: Path, data: Path) -> dict[str, Any]:
    return {"id": "gw1", "reconnectDelay": "1s", "dataDir": str(data),
            "provider": {"type": "mysensors_v2",
                         "protocol": {"type": "serial", "portname": str(link), "transmitPreDelay": "10ms"}}}


async def listen(device: PtyDevice, seconds: float) -> list[str]:
    """What the node hears while its radio is on."""
    heard: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        heard += device.poll_lines()
        await asyncio.sleep(0.005)
    return heard


def _gateway(device: PtyDevice, data: Path) -> tuple[FakeContext, Any]:
    """The serial gateway on the node's pseudo-terminal, keeping its state in ``data``."""
    ctx = FakeContext("gw1")
    return ctx, build_gateway("gw1", _config(device.link, data), ctx)


def _downlink(raw: str, key: str) -> Downlink:
    return Downlink("gw1", "mysensors_v2", raw, node_id="7", key=key)


def test_command_for_a_sleeping_node_is_delivered_inside_its_awake_window(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx, gateway = _gateway(device, tmp_path / "data")

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            # first cycle: the node reports, announces sleep, listens, sleeps
            device.write("7;1;1;0;0;18.5\n")
            device.write(f"7;255;3;0;32;{WINDOW_MS}\n")
            await wait_for(lambda: "7" in gateway.status()["sleep_nodes"], what="node known as a sleeper")
            received = Received(device)
            await wait_for(lambda: not gateway._is_awake("7"), what="window over")
            assert received() == [], "nothing was queued: nothing to say in the first window"

            # while it sleeps: two commands for the same switch (the newer wins) and one for the dimmer
            await gateway.send(_downlink("7;3;1;0;2;1", "7;3;2"))
            await gateway.send(_downlink("7;4;1;0;3;30", "7;4;3"))
            await gateway.send(_downlink("7;3;1;0;2;0", "7;3;2"))
            assert gateway.status()["sleep_queue"] == {"7": 2}
            # nothing was sent into the void: a line written now would also head what the next window hears
            assert device.poll_lines() == []

            # second cycle: it wakes, reports, announces its window and listens
            device.write("7;1;1;0;0;18.7\n")
            device.write(f"7;255;3;0;32;{WINDOW_MS}\n")
            heard = await listen(device, WINDOW_MS / 1000)
            assert heard == ["7;4;1;0;3;30", "7;3;1;0;2;0"]
            assert gateway.status()["sleep_queue"] == {}
            assert gateway.status()["flushed"] == 2

            # a command that arrives while it listens goes straight out
            device.write(f"7;255;3;0;32;{WINDOW_MS}\n")
            await wait_for(lambda: gateway._is_awake("7") and "7;255;3;0;32;500" in ctx.lines[-1:], what="awake")
            received = Received(device)
            await gateway.send(_downlink("7;3;1;0;2;1", "7;3;2"))
            await wait_for(received.having(lambda line: line == "7;3;1;0;2;1"), what="the command on the wire")
            assert received.lines == ["7;3;1;0;2;1"] and gateway.status()["sleep_queue"] == {}
        device.unplug()

    asyncio.run(scenario())
    assert ctx.lines.count(f"7;255;3;0;32;{WINDOW_MS}") == 3  # the notifications still reach the cloud


def test_sleepers_and_their_queue_survive_an_agent_restart(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    data = tmp_path / "data"

    async def first_run() -> None:
        ctx, gateway = _gateway(device, data)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            device.write("7;255;3;0;32;0\n")  # goes to sleep at once
            await wait_for(lambda: "7" in gateway.status()["sleep_nodes"], what="node known as a sleeper")
            await gateway.send(_downlink("7;3;1;0;2;1", "7;3;2"))
            assert gateway.status()["sleep_queue"] == {"7": 1}

    async def second_run() -> None:
        ctx, gateway = _gateway(device, data)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up again")
            assert gateway.status()["sleep_nodes"] == ["7"]
            await gateway.send(_downlink("7;4;1;0;3;55", "7;4;3"))
            assert gateway.status()["sleep_queue"] == {"7": 2}
            assert device.poll_lines() == []
            device.write("7;255;3;0;33;\n")  # I_POST_SLEEP_NOTIFICATION: awake again
            received = Received(device)
            heard = await wait_for(lambda: len(received()) >= 2 and received.lines, what="queue flushed")
            assert heard == ["7;3;1;0;2;1", "7;4;1;0;3;55"]

    asyncio.run(first_run())
    asyncio.run(second_run())
    device.unplug()


def test_a_node_reflashed_to_stay_awake_gets_its_commands_at_once_and_labels_can_pin_the_mode(tmp_path: Path) -> None:
    from mycontroller_protocol.mysensors.control import sleep_control

    device = PtyDevice(tmp_path / "ttyMySensors")
    data = tmp_path / "data"

    def pin(node: str, sleep: bool | None, pinned: bool = True) -> Downlink:
        return Downlink("gw1", "mysensors_v2", sleep_control(node, sleep=sleep, pinned=pinned), node_id=node)

    async def first_run() -> None:
        ctx, gateway = _gateway(device, data)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            device.write("7;255;3;0;32;0\n")  # a smart-sleep sketch: sleeps at once
            await wait_for(lambda: "7" in gateway.status()["sleep_nodes"], what="node known as a sleeper")
            await gateway.send(_downlink("7;3;1;0;2;1", "7;3;2"))
            assert gateway.status()["sleep_queue"] == {"7": 1}

            # re-flashed with an always-on sketch: it presents itself, gets what waited, and is no sleeper now
            received = Received(device)
            device.write("7;255;0;0;17;2.3.2\n")
            await wait_for(received.having(lambda line: line == "7;3;1;0;2;1"), what="the queued command")
            assert gateway.status()["sleep_nodes"] == [] and gateway.status()["sleep_queue"] == {}
            await asyncio.sleep(1.2)  # long past any awake window
            await gateway.send(_downlink("7;3;1;0;2;0", "7;3;2"))
            await wait_for(received.having(lambda line: line == "7;3;1;0;2;0"), what="a command at once")

            # node 8 never said it sleeps; its labels say it does (sleep_node, ignore_sleep_node): commands wait
            await gateway.send(pin("8", True))
            await gateway.send(Downlink("gw1", "mysensors_v2", "8;1;1;0;2;1", node_id="8", key="8;1;2"))
            assert gateway.status()["sleep_queue"] == {"8": 1} and gateway.status()["sleep_pinned"] == {"8": True}
            # and node 7's labels pin it always-on: it says it sleeps, its commands still go at once
            await gateway.send(pin("7", False))
            device.write("7;255;3;0;32;0\n")
            await wait_for(lambda: "7;255;3;0;32;0" in ctx.lines[-1:], what="the sleep notice read")
            await gateway.send(_downlink("7;3;1;0;2;1", "7;3;2"))
            await wait_for(lambda: received().count("7;3;1;0;2;1") == 2, what="no queueing for a pinned node")

    async def second_run() -> None:  # pins outlive a restart; unpinning follows the node again
        ctx, gateway = _gateway(device, data)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up again")
            assert gateway.status()["sleep_pinned"] == {"7": False, "8": True}
            assert gateway.status()["sleep_nodes"] == ["8"] and gateway.status()["sleep_queue"] == {"8": 1}
            received = Received(device)
            await gateway.send(pin("8", False, pinned=False))  # labels removed: node 8 never slept, so it is awake
            await wait_for(received.having(lambda line: line == "8;1;1;0;2;1"), what="node 8's command flushed")
            await gateway.send(pin("7", None, pinned=False))  # unpinned: node 7 said it sleeps, a sleeper again
            assert gateway.status()["sleep_nodes"] == ["7"] and gateway.status()["sleep_pinned"] == {}

    asyncio.run(first_run())
    asyncio.run(second_run())
    device.unplug()


def test_the_awake_window_is_counted_from_when_the_node_wrote_its_notice(tmp_path: Path) -> None:
    """Under steady traffic the serial port is read every READ_INTERVAL_S: the notice may have waited that long in
    the tty, so the edge counts the window as that much shorter, never past the node's real one."""
    from edge.gateways.transport import READ_INTERVAL_S

    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx, gateway = _gateway(device, tmp_path / "data")

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            device.write(f"7;255;3;0;32;{WINDOW_MS}\n")
            await wait_for(lambda: "7" in gateway.awake_until, what="the notice handled")
            handled_by = time.monotonic()  # the notice was handled before this
            assert gateway.read_delay_s() == READ_INTERVAL_S
            assert gateway.awake_until["7"] <= handled_by + WINDOW_MS / 1000 - READ_INTERVAL_S

    asyncio.run(scenario())
