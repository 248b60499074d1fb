"""The system monitor reads this host through psutil and speaks mc_json the cloud accepts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chalicelib.core.ops import FieldValue
from chalicelib.core.providers.mc_json.interpreter import McJsonInterpreter
from edge.gateways import build_gateway
from edge.gateways.system_monitor import SystemMonitor
from mycontroller_protocol.envelope import Downlink, Envelope
from tests.integration.gateway_helpers import FakeContext, running, wait_for


def _monitor(tmp_path: Path, **provider: object) -> tuple[SystemMonitor, FakeContext]:
    ctx = FakeContext("host", provider="mc_json")
    config = {"id": "host", "dataDir": str(tmp_path),
              "provider": {"type": "system_monitoring", "interval": "50ms", "nodeId": "test.host", **provider}}
    monitor = build_gateway("host", config, ctx)
    assert isinstance(monitor, SystemMonitor)
    return monitor, ctx


def test_one_sample_covers_cpu_memory_and_the_root_disk(tmp_path: Path) -> None:
    monitor, _ = _monitor(tmp_path, mounts=["/"])
    messages = monitor.sample()
    by_field = {(m["s"], m["f"]): m for m in messages}
    assert by_field[("cpu", "usage")]["m"] == "gauge_float" and 0 <= by_field[("cpu", "usage")]["v"] <= 100
    assert any(source == "cpu" and field.startswith("core_") for source, field in by_field)
    memory = by_field[("memory", "used_percent")]
    assert (memory["u"], 0 < memory["v"] < 100) == ("%", True)
    assert by_field[("memory", "available")]["m"] == "gauge" and by_field[("memory", "available")]["v"] > 0
    root = by_field[("disk_root", "used_percent")]
    assert root["sn"] == "Disk /" and 0 <= root["v"] <= 100
    assert by_field[("disk_root", "total")]["v"] >= by_field[("disk_root", "free")]["v"]
    assert {m["n"] for m in messages} == {"test_host"}  # dots are not allowed in ids
    for message in messages:
        if message["s"] == "temperature":
            assert message["u"] == "°C" and -40 < message["v"] < 150


def test_run_emits_mc_json_the_cloud_interprets(tmp_path: Path) -> None:
    monitor, ctx = _monitor(tmp_path)
    interpreter = McJsonInterpreter()

    async def scenario() -> None:
        async with running(monitor):
            await wait_for(lambda: ctx.status == "up", what="monitor up")
            await wait_for(lambda: monitor.samples >= 2, what="two samples")
            await monitor.send(Downlink("host", "mc_json", '{"n":"x","s":"y","f":"z","v":1}'))  # ignored

    asyncio.run(scenario())
    assert ctx.status == "down"
    lines = ctx.lines
    assert lines
    for index, raw in enumerate(lines):
        assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False)  # compact
        envelope = Envelope("host", "mc_json", 1, index, f"m{index}", raw)
        (op,) = interpreter.interpret(envelope, {"id": "host"})
        assert isinstance(op, FieldValue) and op.node_id == "test_host"
    sources = {json.loads(raw)["s"] for raw in lines}
    assert {"cpu", "memory"} <= sources and any(s.startswith("disk_") for s in sources)
