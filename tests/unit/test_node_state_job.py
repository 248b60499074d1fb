"""Nodes silent past their inactive duration go down, announced on the bus; traffic brings them back up."""

from __future__ import annotations

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.automation.node_state import DEFAULT_INACTIVE_MS, inactive_ms, nodes_gone_silent
from chalicelib.core.model import Kind, Node, iso_from_ms
from chalicelib.core.ports import BusEvent
from chalicelib.core.processor import Processor
from chalicelib.functions.jobs import NodeStateJob
from mycontroller_protocol.envelope import Envelope

T0 = 1_767_225_600_000


def node(node_id: str, last_seen_ms: int, status: str = "up", **labels: str) -> dict:
    record = Node(gateway_id="gw", node_id=node_id, labels=labels).record()
    return {**record, "lastSeen": iso_from_ms(last_seen_ms), "state": {"status": status, "message": "", "since": None}}


def test_only_up_nodes_silent_past_their_duration_go_down() -> None:
    now = T0 + 20 * 60_000
    nodes = [node("1", T0), node("2", now - 60_000), node("3", T0, status="down"),
             node("4", T0, inactive_duration="1h"), node("5", now - 3 * 60_000, inactive_duration="2m"),
             node("6", T0, inactive_duration="nonsense")]
    down = {record["id"]: record for record in nodes_gone_silent(nodes, now)}
    assert set(down) == {"gw.1", "gw.5", "gw.6"}
    assert down["gw.1"]["state"]["status"] == "down"
    assert down["gw.1"]["state"]["since"] == iso_from_ms(now)
    assert "20 min" in down["gw.1"]["state"]["message"]
    assert inactive_ms(node("7", T0, INACTIVE_DURATION="30s")) == 30_000  # labels are case-insensitive
    assert inactive_ms(node("8", T0)) == DEFAULT_INACTIVE_MS


def test_job_marks_down_announces_and_traffic_brings_the_node_back() -> None:
    repository = MemoryRepository(None)
    bus = LocalEventBus("sync")
    seen: list[BusEvent] = []
    bus.subscribe("tap", {"source": ["mycontroller"]}, seen.append)
    processor = Processor(repository, NoMetricStore())
    processor.process([Envelope("gw", "mysensors_v2", T0, 1, "s-1", "3;1;1;0;0;20.5")])
    clock = {"now": T0 + 16 * 60_000}
    job = NodeStateJob(repository, bus, clock=lambda: clock["now"])
    assert [r["id"] for r in job.run()] == ["gw.3"]
    stored = repository.get(Kind.NODE, "gw.3")
    assert stored is not None and stored["state"]["status"] == "down"
    assert [e.detail_type for e in seen] == ["node.updated"]
    assert job.run() == []  # already down: nothing more
    processor.process([Envelope("gw", "mysensors_v2", T0 + 17 * 60_000, 2, "s-2", "3;1;1;0;0;21.0")])
    stored = repository.get(Kind.NODE, "gw.3")
    assert stored is not None and stored["state"]["status"] == "up"
