"""The MySensors simulator: it presents like a real node, reports plausible values and obeys commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge.gateways import build_gateway
from edge.gateways.simulator import MySensorsSimulator
from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.codec import decode_line
from tests.integration.gateway_helpers import FakeContext, running, wait_for


def _simulator(tmp_path: Path, **protocol: Any) -> tuple[MySensorsSimulator, FakeContext]:
    ctx = FakeContext("sim")
    config = {"id": "sim", "dataDir": str(tmp_path),
              "provider": {"type": "mysensors_v2", "protocol": {"type": "simulator", "seed": 1, **protocol}}}
    gateway = build_gateway("sim", config, ctx)
    assert isinstance(gateway, MySensorsSimulator)
    return gateway, ctx


def test_startup_is_gateway_ready_then_each_node_presents_then_reports(tmp_path: Path) -> None:
    sim, _ = _simulator(tmp_path, nodes=3)
    lines = sim.startup_lines()
    for line in lines:
        decode_line(line)  # every line is valid MySensors
    assert lines[:2] == ["0;255;0;0;18;2.3.2", "0;255;3;0;14;Gateway startup complete."]
    node1 = [line for line in lines if line.startswith("1;")]
    assert node1[:8] == [
        "1;255;0;0;17;2.3.2",
        "1;255;3;0;6;0",
        "1;255;3;0;11;Living room",
        f"1;255;3;0;12;{sim.nodes[1].sketch_version}",
        "1;1;0;0;6;Temperature",
        "1;2;0;0;7;Humidity",
        "1;3;0;0;3;Ceiling light",
        "1;4;0;0;4;Table lamp",
    ]
    kinds = [(line.split(";")[1], line.split(";")[2], line.split(";")[4]) for line in node1[8:]]
    assert kinds == [("1", "1", "0"), ("2", "1", "1"), ("3", "1", "2"), ("4", "1", "2"), ("4", "1", "3"),
                     ("255", "3", "0")]
    assert [line.split(";")[0] for line in lines[2:]] == ["1"] * 14 + ["2"] * 14 + ["3"] * 14
    assert "2;255;3;0;11;Kitchen" in lines and "3;255;3;0;11;Bedroom" in lines


def test_same_seed_same_traffic_and_values_stay_realistic(tmp_path: Path) -> None:
    first, _ = _simulator(tmp_path, nodes=4)
    second, _ = _simulator(tmp_path, nodes=4)
    run1 = first.startup_lines() + [line for _ in range(300) for line in first.tick_lines()]
    run2 = second.startup_lines() + [line for _ in range(300) for line in second.tick_lines()]
    assert run1 == run2
    other, _ = _simulator(tmp_path, nodes=4, seed=2)
    assert other.startup_lines() + [line for _ in range(300) for line in other.tick_lines()] != run1

    temps, hums, batteries = [], [], []
    for line in run1:
        msg = decode_line(line)
        if msg.command == 1 and msg.type == 0:
            temps.append(float(msg.payload))
        elif msg.command == 1 and msg.type == 1:
            hums.append(float(msg.payload))
        elif msg.command == 3 and msg.type == 0:
            batteries.append(int(msg.payload))
    assert len(temps) > 300 and len(hums) > 300 and batteries
    assert all(10 <= t <= 30 for t in temps)
    assert all(15 <= h <= 95 for h in hums)
    assert all(5 <= b <= 100 for b in batteries)
    assert len(set(temps)) > 10  # it moves


def test_set_changes_state_and_the_node_reports_it_back(tmp_path: Path) -> None:
    sim, _ = _simulator(tmp_path, nodes=2)
    assert sim.handle_command("2;3;1;0;2;1") == ["2;3;1;0;2;1"]
    assert sim.nodes[2].switch == 1 and sim.nodes[1].switch == 0
    assert sim.handle_command("2;4;1;0;3;75") == ["2;4;1;0;3;75", "2;4;1;0;2;1"]
    assert sim.handle_command("2;4;1;0;2;0") == ["2;4;1;0;2;0", "2;4;1;0;3;75"]
    assert sim.handle_command("2;4;1;0;3;0") == ["2;4;1;0;3;0", "2;4;1;0;2;0"]
    # an ack-requested set is echoed with the ack bit first, as the radio does
    assert sim.handle_command("1;3;1;1;2;1") == ["1;3;1;1;2;1", "1;3;1;0;2;1"]
    # read-only sensors, unknown nodes and junk are ignored
    assert sim.handle_command("1;1;1;0;0;99") == []
    assert sim.handle_command("9;3;1;0;2;1") == []
    assert sim.handle_command("nonsense") == []


def test_requests_and_internal_commands_are_answered(tmp_path: Path) -> None:
    sim, _ = _simulator(tmp_path, nodes=2)
    node = sim.nodes[1]
    assert sim.handle_command("1;1;2;0;0;") == [f"1;1;1;0;0;{node.temperature:.1f}"]
    assert sim.handle_command("1;4;2;0;3;") == [f"1;4;1;0;3;{node.dimmer_level}"]
    heartbeat = sim.handle_command("1;255;3;0;18;")
    assert len(heartbeat) == 1 and heartbeat[0].startswith("1;255;3;0;22;")
    assert sim.handle_command("1;255;3;0;19;") == sim.presentation_lines(node)
    assert sim.handle_command("255;255;3;0;20;") == ["1;255;3;0;21;0", "2;255;3;0;21;0"]
    assert sim.handle_command("1;255;3;0;6;M") == []
    assert node.received == ["1;255;3;0;6;M"]


def test_run_emits_through_the_context_and_send_obeys(tmp_path: Path) -> None:
    sim, ctx = _simulator(tmp_path, nodes=2, interval="20ms")

    async def scenario() -> None:
        async with running(sim):
            await wait_for(lambda: ctx.status == "up", what="simulator up")
            startup = len(sim.startup_lines())
            await wait_for(lambda: len(ctx.lines) > startup + 4, what="periodic values after the presentation")
            assert ctx.lines[1] == "0;255;3;0;14;Gateway startup complete."
            await sim.send(Downlink("sim", "mysensors_v2", "1;3;1;0;2;1", node_id="1"))
            assert ctx.lines[-1] == "1;3;1;0;2;1"

    asyncio.run(scenario())
    assert ctx.status == "down"
    assert sim.status()["commands"] == 1


def test_the_cloud_interpreter_understands_every_simulated_line(tmp_path: Path) -> None:
    from chalicelib.core.ops import FieldValue, NodeInfo, SourceInfo
    from chalicelib.core.providers.mysensors.interpreter import MySensorsInterpreter
    from mycontroller_protocol.envelope import Envelope

    sim, _ = _simulator(tmp_path, nodes=3)
    interpreter = MySensorsInterpreter()
    lines = sim.startup_lines() + [line for _ in range(100) for line in sim.tick_lines()]
    lines += sim.handle_command("2;4;1;0;3;35") + sim.handle_command("255;255;3;0;20;")
    ops = []
    for index, line in enumerate(lines):
        envelope = Envelope("sim", "mysensors_v2", 1_767_225_600_000 + index, index, f"m{index}", line)
        ops += interpreter.interpret(envelope, {"id": "sim", "provider": {"type": "mysensors_v2"}})
    names = {op.name for op in ops if isinstance(op, NodeInfo) and op.name}
    assert names == {"Living room", "Kitchen", "Bedroom"}
    sources = {(op.node_id, op.source_id, op.name) for op in ops if isinstance(op, SourceInfo)}
    assert ("1", "4", "Table lamp") in sources and len(sources) == 12
    values = {(op.node_id, op.source_id, op.field_id) for op in ops if isinstance(op, FieldValue)}
    assert {("2", "4", "V_PERCENTAGE"), ("1", "1", "V_TEMP"), ("3", "2", "V_HUM"), ("1", "3", "V_STATUS")} <= values
