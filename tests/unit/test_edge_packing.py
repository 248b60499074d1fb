"""The edge's packing window (``edge/uplink/packing.py``): where publishes are billed (AWS IoT Core) a publish that
is not full waits up to a second for more messages, so a home's trickle travels several messages a publish; a
command echo, a request (I_TIME, I_CONFIG), a presentation or a gateway state never waits, and a full publish goes
at once. The agent is driven through its in-process uplink, timing every publish."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

from chalicelib.core.publish_reader import decode_publish
from edge.agent import EdgeAgent
from edge.config import AWS_IOT_LINGER_MS, DEFAULT_LINGER_MS, UplinkSection, default_linger_ms, parse_config
from edge.gateways.base import Gateway, GatewayContext, register_gateway
from edge.gateways.mysensors.gateway import is_command
from edge.uplink.packing import is_urgent, publish_wait
from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.codec import decode_line


class Row:
    def __init__(self, command: bool) -> None:
        self.command = command


def test_the_window_runs_from_the_oldest_envelope_and_urgent_or_full_publishes_go_at_once() -> None:
    assert abs(publish_wait(10_000, 10.2, 1.0, full=False, urgent=False) - 0.8) < 1e-9
    assert publish_wait(10_000, 11.0, 1.0, full=False, urgent=False) <= 0  # the window is over
    assert publish_wait(10_000, 10.0, 1.0, full=True, urgent=False) == 0.0
    assert publish_wait(10_000, 10.0, 1.0, full=False, urgent=True) == 0.0
    assert is_urgent([Row(False), Row(True)]) and not is_urgent([Row(False)]) and not is_urgent([])


def test_aws_iot_publishes_wait_a_second_other_uplinks_hardly() -> None:
    assert default_linger_ms("aws_iot") == AWS_IOT_LINGER_MS == 1000
    assert default_linger_ms("mqtt") == default_linger_ms("inprocess") == DEFAULT_LINGER_MS == 50
    tls = {"cert": "c.pem", "key": "k.pem"}
    assert UplinkSection(type="aws_iot", endpoint="x-ats.iot.eu-west-1.amazonaws.com", tls=tls).linger_s == 1.0
    assert UplinkSection(type="mqtt", host="broker").linger_s == 0.05
    assert UplinkSection(type="aws_iot", endpoint="e", tls=tls, linger_ms=200).linger_s == 0.2  # configurable
    assert UplinkSection(type="mqtt", host="broker", linger_ms=0).linger_s == 0.0


def test_what_never_waits_is_what_the_spool_keeps_as_a_command() -> None:
    urgent = ["1;255;0;0;17;2.3.2",  # a presentation
              "1;1;0;0;6;temperature",
              "1;255;3;0;1;",  # I_TIME request
              "1;255;3;0;6;M",  # I_CONFIG request
              "1;3;1;1;2;1"]  # the echo of a command (ack)
    telemetry = ["1;1;1;0;0;21.5", "1;255;3;0;0;87"]  # a reading, a battery level
    assert all(is_command(decode_line(line)) for line in urgent)
    assert not any(is_command(decode_line(line)) for line in telemetry)


@register_gateway("test_packing")
class Lines(Gateway):
    """Emits what the test queues, as a MySensors gateway would (telemetry or command)."""

    queue: ClassVar[asyncio.Queue[tuple[str, bool]] | None] = None

    def __init__(self, gateway_id: str, config: dict[str, Any], ctx: GatewayContext) -> None:
        self.gateway_id, self.config, self.ctx = gateway_id, config, ctx

    async def run(self) -> None:
        assert Lines.queue is not None
        while True:
            line, command = await Lines.queue.get()
            self.ctx.emit(line, command=command)

    async def send(self, downlink: Downlink) -> None:
        return None


def test_the_agent_packs_telemetry_and_sends_commands_at_once(tmp_path: Path) -> None:
    published: list[tuple[float, list[str]]] = []

    def take(body: bytes) -> None:
        published.append((time.monotonic(), [e.raw for e in decode_publish(body)[0] if e.provider != "edge"]))

    async def main() -> None:
        Lines.queue = asyncio.Queue()
        config = parse_config({"edge": {"id": "pi", "data_dir": str(tmp_path / "edge")},
                               "uplink": {"type": "inprocess", "linger_ms": 800},
                               "gateways": [{"id": "gw", "provider": {"type": "test_packing"}}]}, base_dir=tmp_path)
        agent = EdgeAgent(config, publish_handler=take)
        await agent.start()
        try:
            await asyncio.sleep(0.3)  # the gateway's "up" state has gone (a command: at once)
            published.clear()
            started = time.monotonic()
            for value in ("20.1", "20.2", "20.3"):
                await Lines.queue.put((f"1;1;1;0;0;{value}", False))
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)
            assert len(published) == 1, published  # three readings, one publish, after the window
            at, lines = published[0]
            assert lines == ["1;1;1;0;0;20.1", "1;1;1;0;0;20.2", "1;1;1;0;0;20.3"]
            assert 0.7 <= at - started <= 1.2
            published.clear()
            await Lines.queue.put(("1;1;1;0;0;20.4", False))
            await asyncio.sleep(0.1)
            sent = time.monotonic()
            await Lines.queue.put(("1;3;1;1;2;1", True))  # a command's echo: the waiting reading goes with it
            deadline = time.monotonic() + 2
            while not published and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert published and published[0][1] == ["1;1;1;0;0;20.4", "1;3;1;1;2;1"]
            assert published[0][0] - sent < 0.35  # not the 800 ms window
        finally:
            await agent.stop()

    asyncio.run(main())
