"""MySensors firmware over the air, served by the edge's serial gateway to a bootloader on a real pseudo-terminal.

The node on the far end runs the bootloader's side of the protocol (``ota_node.BootloaderNode``) and checks the
image it received byte for byte against the firmware's HEX file. The firmware reaches the edge as the cloud sends
it: a control downlink naming its checksum and a URL (here ``file://``, as the local stack's store gives it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.control import ota_control
from mycontroller_protocol.mysensors.firmware import FirmwareImage, parse_intel_hex
from tests.integration.gateway_helpers import FakeContext, PtyDevice, Received, running, wait_for
from tests.integration.ota_node import BootloaderNode, intel_hex

NODE = 7


def _config(link: Path, data: Path, **provider: Any) -> dict[str, Any]:
    return {"id": "gw1", "reconnectDelay": "1s", "dataDir": str(data),
            "provider": {"type": "mysensors_v2", **provider,
                         "protocol": {"type": "serial", "portname": str(link), "baudRate": 115200}}}


def _firmware(tmp_path: Path, size: int = 3000) -> tuple[Path, bytes]:
    """A firmware HEX file (as the Arduino IDE exports one) and the application bytes it holds."""
    app = random.Random(size).randbytes(size)
    path = tmp_path / "store" / "firmware" / "blink"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(intel_hex(app))
    return path, app


def _assign(path: Path, *, reboot: bool = True, expires: int | None = None, **extra: Any) -> Downlink:
    content = path.read_bytes()
    fields: dict[str, Any] = {"firmware": "blink", "type": 10, "version": 2,
                              "checksum": "sha256:" + hashlib.sha256(content).hexdigest(), "size": len(content),
                              "url": path.as_uri(), "reboot": reboot, **extra}
    if expires is not None:
        fields["urlExpires"] = expires
    return Downlink("gw1", "mysensors_v2", ota_control(str(NODE), **fields), node_id=str(NODE))


def _reports(ctx: FakeContext) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ctx.lines if line.startswith("{")]


def _state(ctx: FakeContext) -> str | None:
    states = [r.get("state") for r in _reports(ctx) if r.get("node") == str(NODE) and "state" in r]
    return states[-1] if states else None


def test_a_sleeping_node_is_rebooted_when_it_wakes_and_takes_its_firmware_from_the_edge(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("gw1")
    gateway: Any = build_gateway("gw1", _config(device.link, tmp_path / "data"), ctx)
    hex_path, app = _firmware(tmp_path)
    image = FirmwareImage.load(hex_path.read_bytes(), 10, 2)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            # a smart-sleep node: it listens 300 ms after saying so, then sleeps
            device.write(f"{NODE};255;3;0;32;300\n")
            await wait_for(lambda: str(NODE) in gateway.status()["sleep_nodes"], what="a sleeper")
            await wait_for(lambda: not gateway._is_awake(str(NODE)), what="asleep")

            await gateway.send(_assign(hex_path))
            await wait_for(lambda: _state(ctx) == "ready", what="the firmware at the edge")
            assert gateway.status()["sleep_queue"] == {str(NODE): 1}, "the reboot waits for the node to wake"
            assert device.poll_lines() == []

            # it wakes: the reboot goes out in its window, and its bootloader asks for the firmware
            received = Received(device)
            device.write(f"{NODE};255;3;0;32;300\n")
            await wait_for(received.having(lambda line: line == f"{NODE};255;3;0;13;"), what="the reboot")
            node = BootloaderNode(device, NODE, type_id=1, version=1, blocks=200, crc=0x1234)
            started = time.monotonic()
            assert await node.boot() == "updated"
            elapsed = time.monotonic() - started
            assert node.flash == image.data, "the node got the image, byte for byte"
            assert node.flash[:len(app)] == app and node.flash == parse_intel_hex(hex_path.read_text()) + \
                b"\xff" * (len(image.data) - len(app))
            assert node.retries == 0
            await wait_for(lambda: _state(ctx) == "sent", what="every block sent")
            # the blocks never went to the cloud: only the config request and the progress reports did
            stream = [line for line in ctx.lines if line.startswith(f"{NODE};255;4;")]
            assert [line.split(";")[4] for line in stream] == ["0"]
            last = _reports(ctx)[-1]
            assert (last["blocksSent"], last["blocks"]) == (image.blocks, image.blocks)
            assert image.blocks / elapsed > 30, f"{image.blocks} blocks took {elapsed:.2f} s"

            # the node boots what it flashed: its config now says so
            assert await node.boot() == "current"
            await wait_for(lambda: _state(ctx) == "done", what="done")
            assert gateway.status()["ota"][str(NODE)]["state"] == "done"
        device.unplug()

    asyncio.run(scenario())


def test_an_update_cut_by_a_power_loss_and_an_agent_restart_resumes_from_the_cache(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    hex_path, _app = _firmware(tmp_path, 5000)
    image = FirmwareImage.load(hex_path.read_bytes(), 10, 2)
    data = tmp_path / "data"
    node = BootloaderNode(device, NODE, timeout=0.5)

    async def first() -> None:
        ctx = FakeContext("gw1")
        gateway: Any = build_gateway("gw1", _config(device.link, data), ctx)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await gateway.send(_assign(hex_path, reboot=False))
            await wait_for(lambda: _state(ctx) == "ready", what="fetched")
            assert await node.boot(lose_power_after=60) == "power lost"
            await wait_for(lambda: gateway.status()["ota"][str(NODE)]["blocks_sent"] == 60, what="60 blocks")

    async def second() -> None:
        hex_path.unlink()  # the store's URL is gone: the edge's cache has the file
        ctx = FakeContext("gw1")
        gateway: Any = build_gateway("gw1", _config(device.link, data), ctx)
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up again")
            await wait_for(lambda: gateway.status()["ota"].get(str(NODE), {}).get("state") == "running",
                           what="the update as it was")
            assert await node.boot() == "updated"
            assert node.flash == image.data
            await wait_for(lambda: _state(ctx) == "sent", what="sent")
            assert gateway.status()["ota"][str(NODE)]["blocks_sent"] == image.blocks

    asyncio.run(first())
    asyncio.run(second())
    device.unplug()


def test_a_firmware_that_cannot_be_had_fails_with_its_reason_and_an_erase_is_answered(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("gw1")
    gateway: Any = build_gateway("gw1", _config(device.link, tmp_path / "data"), ctx)
    hex_path, _app = _firmware(tmp_path)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            # a URL that is gone and expired, and no new one comes: the update fails, saying to run it again
            gateway.ota.url_wait_s = 0.05
            missing = tmp_path / "gone.hex"
            missing.write_bytes(hex_path.read_bytes())
            downlink = _assign(missing, expires=int(time.time() * 1000) - 1)
            missing.unlink()
            await gateway.send(downlink)
            await wait_for(lambda: _state(ctx) == "failed", what="failed")
            assert "run firmware_update again" in _reports(ctx)[-1]["message"]
            assert sum(1 for r in _reports(ctx) if r.get("urlRequest")) == 3  # it asked, a bounded number of times
            # a file that is not what the cloud said it is
            tampered = _assign(hex_path)
            hex_path.write_text(intel_hex(b"\x00" * 64))
            await gateway.send(tampered)
            await wait_for(lambda: _state(ctx) == "failed" and "checksum" in _reports(ctx)[-1]["message"],
                           what="checksum refused")
            # nothing is served for a failed update: the bootloader's request goes to the cloud, unanswered
            received = Received(device)
            device.write(f"{NODE};255;4;0;0;0A000200\n")
            await wait_for(lambda: f"{NODE};255;4;0;0;0A000200" in ctx.lines, what="request upstream")
            await asyncio.sleep(0.2)
            assert received() == []

            # reset's EEPROM erase: the next config request gets MYSBootloader's erase command, once
            await gateway.send(Downlink("gw1", "mysensors_v2", ota_control(str(NODE), erase=True),
                                        node_id=str(NODE)))
            node = BootloaderNode(device, NODE)
            assert await node.boot() == "erased"
            await wait_for(lambda: any(r.get("eepromErased") for r in _reports(ctx)), what="erase reported")
        device.unplug()

    asyncio.run(scenario())


def test_the_same_update_over_a_mysensors_mqtt_gateway(volatile_broker: Any, tmp_path: Path) -> None:
    import struct

    from tests.integration.gateway_helpers import MqttProbe

    ctx = FakeContext("gw1")
    config = {"id": "gw1", "reconnectDelay": "1s", "dataDir": str(tmp_path / "data"),
              "provider": {"type": "mysensors_v2", "protocol": {
                  "type": "mqtt", "broker": volatile_broker.url, "subscribe": "mygateway1-out/#",
                  "publish": "mygateway1-in", "qos": 0}}}
    gateway: Any = build_gateway("gw1", config, ctx)
    hex_path, _app = _firmware(tmp_path, 700)
    image = FirmwareImage.load(hex_path.read_bytes(), 10, 2)

    async def scenario() -> None:
        async with MqttProbe(volatile_broker.url, ["mygateway1-in/#"]) as node, running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            await gateway.send(_assign(hex_path))
            await wait_for(lambda: ("mygateway1-in/7/255/3/0/13", b"") in node.received, what="the reboot")

            async def ask(type_id: int, payload: bytes) -> bytes:
                topic = f"mygateway1-in/7/255/4/0/{type_id + 1}"
                seen = len(node.received)
                await node.publish(f"mygateway1-out/7/255/4/0/{type_id}", payload.hex().upper())
                answers = await wait_for(lambda: [p for t, p in node.received[seen:] if t == topic], what=topic)
                return bytes.fromhex(answers[0].decode())

            config_answer = await ask(0, struct.pack("<5H", 1, 1, 0, 0, 0x0103))
            assert struct.unpack("<4H", config_answer) == (10, 2, image.blocks, image.crc)
            flash = bytearray(image.blocks * 16)
            for block in range(image.blocks - 1, -1, -1):
                answer = await ask(2, struct.pack("<3H", 10, 2, block))
                assert struct.unpack("<3H", answer[:6]) == (10, 2, block)
                flash[block * 16:(block + 1) * 16] = answer[6:]
            assert bytes(flash) == image.data
            await wait_for(lambda: _state(ctx) == "sent", what="sent")

    asyncio.run(scenario())


def test_a_firmware_assigned_while_the_gateway_is_unplugged_reboots_the_node_once_it_is_back(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("gw1")
    gateway: Any = build_gateway("gw1", _config(device.link, tmp_path / "data"), ctx)
    hex_path, _app = _firmware(tmp_path, 500)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            device.unplug()
            await wait_for(lambda: ctx.status == "down", what="gateway down")
            await gateway.send(_assign(hex_path))
            await wait_for(lambda: _state(ctx) == "ready", what="fetched while away")
            device.plug()
            received = Received(device)
            await wait_for(received.having(lambda line: line == f"{NODE};255;3;0;13;"), timeout=15,
                           what="the reboot once the gateway is back")
            assert await BootloaderNode(device, NODE).boot() == "updated"
        device.unplug()

    asyncio.run(scenario())


def test_an_update_whose_url_expired_asks_the_cloud_for_a_new_one_and_goes_on(tmp_path: Path) -> None:
    device = PtyDevice(tmp_path / "ttyMySensors")
    ctx = FakeContext("gw1")
    gateway: Any = build_gateway("gw1", _config(device.link, tmp_path / "data"), ctx)
    hex_path, _app = _firmware(tmp_path, 800)
    image = FirmwareImage.load(hex_path.read_bytes(), 10, 2)

    async def scenario() -> None:
        async with running(gateway):
            await wait_for(lambda: ctx.status == "up", what="gateway up")
            gone = tmp_path / "expired.hex"
            gone.write_bytes(hex_path.read_bytes())
            stale = _assign(gone, expires=int(time.time() * 1000) - 1)  # the edge was away longer than the URL
            gone.unlink()
            await gateway.send(stale)
            request = await wait_for(lambda: [r for r in _reports(ctx) if r.get("urlRequest")], what="URL request")
            assert request[0]["state"] == "fetching" and "expired" in request[0]["message"]
            # the cloud answers (the MySensors provider's firmware_link): the same firmware, a new URL
            refresh = json.loads(_assign(hex_path, expires=int(time.time() * 1000) + 60_000).raw)
            await gateway.send(Downlink("gw1", "mysensors_v2", ota_control(str(NODE), **{
                **{k: v for k, v in refresh.items() if k not in ("ctl", "node")}, "refresh": True, "reboot": False}),
                node_id=str(NODE)))
            received = Received(device)
            await wait_for(received.having(lambda line: line == f"{NODE};255;3;0;13;"), what="the reboot")
            node = BootloaderNode(device, NODE)
            assert await node.boot() == "updated" and node.flash == image.data
        device.unplug()

    asyncio.run(scenario())
