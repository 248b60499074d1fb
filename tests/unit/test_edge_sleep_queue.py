"""The durable sleep queue: replace by key, per-node bound, expiry, survival across reopen."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from edge.gateways.mysensors.gateway import MySensorsGateway
from edge.gateways.mysensors.sleep_queue import SleepQueue
from mycontroller_protocol.envelope import Downlink
from mycontroller_protocol.mysensors.codec import MySensorsMessage, encode_line
from tests.integration.gateway_helpers import FakeContext, wait_for


class Clock:
    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


def _dl(raw: str, node: str = "5", key: str = "", expires_ms: int | None = None) -> Downlink:
    return Downlink(gateway_id="gw1", provider="mysensors_v2", raw=raw, node_id=node, key=key, expires_ms=expires_ms)


def test_newer_command_with_same_key_replaces_older(tmp_path: Path) -> None:
    queue = SleepQueue(tmp_path / "q.sqlite", clock=Clock())
    queue.put(_dl("5;1;1;0;2;1", key="5;1;2"))
    queue.put(_dl("5;2;1;0;3;40", key="5;2;3"))
    queue.put(_dl("5;1;1;0;2;0", key="5;1;2"))
    raws = [entry.downlink.raw for entry in queue.pending("5")]
    assert raws == ["5;2;1;0;3;40", "5;1;1;0;2;0"]
    assert queue.replaced == 1


def test_commands_without_key_are_all_kept(tmp_path: Path) -> None:
    queue = SleepQueue(tmp_path / "q.sqlite", clock=Clock())
    queue.put(_dl("5;255;3;0;18;"))
    queue.put(_dl("5;255;3;0;18;"))
    assert len(queue.pending("5")) == 2


def test_bound_per_node_drops_oldest_and_leaves_other_nodes_alone(tmp_path: Path) -> None:
    queue = SleepQueue(tmp_path / "q.sqlite", limit=3, clock=Clock())
    queue.put(_dl("7;1;1;0;2;1", node="7"))
    for value in range(5):
        queue.put(_dl(f"5;1;1;0;3;{value}"))
    assert [entry.downlink.raw for entry in queue.pending("5")] == ["5;1;1;0;3;2", "5;1;1;0;3;3", "5;1;1;0;3;4"]
    assert [entry.downlink.raw for entry in queue.pending("7")] == ["7;1;1;0;2;1"]
    assert queue.dropped_full == 2
    assert queue.depth() == {"5": 3, "7": 1}


def test_default_limit_is_the_references_twenty(tmp_path: Path) -> None:
    queue = SleepQueue(tmp_path / "q.sqlite", clock=Clock())
    for value in range(25):
        queue.put(_dl(f"5;1;1;0;3;{value}"))
    pending = queue.pending("5")
    assert len(pending) == 20
    assert pending[0].downlink.raw == "5;1;1;0;3;5"


def test_expired_entries_are_dropped(tmp_path: Path) -> None:
    clock = Clock()
    queue = SleepQueue(tmp_path / "q.sqlite", validity_ms=60_000, clock=clock)
    queue.put(_dl("5;1;1;0;2;1", key="a"))  # default validity: expires at now + 60 s
    queue.put(_dl("5;2;1;0;2;1", key="b", expires_ms=clock.now + 10_000_000))  # explicit, later
    queue.put(_dl("5;3;1;0;2;1", key="c", expires_ms=clock.now - 1))  # already past: not queued at all
    assert [entry.downlink.raw for entry in queue.pending("5")] == ["5;1;1;0;2;1", "5;2;1;0;2;1"]
    clock.now += 60_001
    assert [entry.downlink.raw for entry in queue.pending("5")] == ["5;2;1;0;2;1"]
    assert queue.dropped_expired == 2


def test_queue_and_sleeping_nodes_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = SleepQueue(path, clock=Clock())
    queue.put(_dl("5;1;1;0;2;1", key="5;1;2", expires_ms=2_000_000))
    queue.mark_sleeping_node("5")
    queue.close()

    reopened = SleepQueue(path, clock=Clock())
    pending = reopened.pending("5")
    assert len(pending) == 1
    restored = pending[0].downlink
    assert (restored.raw, restored.key, restored.node_id, restored.gateway_id) == ("5;1;1;0;2;1", "5;1;2", "5", "gw1")
    assert pending[0].expires_ms == 2_000_000
    assert reopened.sleeping_nodes() == {"5"}


def test_remove_acknowledges_one_entry_at_a_time(tmp_path: Path) -> None:
    queue = SleepQueue(tmp_path / "q.sqlite", clock=Clock())
    queue.put(_dl("5;1;1;0;2;1"))
    queue.put(_dl("5;1;1;0;2;0"))
    first, second = queue.pending("5")
    queue.remove(first.entry_id)
    assert [entry.entry_id for entry in queue.pending("5")] == [second.entry_id]


class RecordingGateway(MySensorsGateway):
    """The MySensors gateway logic with the wire replaced by a list."""

    protocol_type = "test"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("gw1", config, FakeContext("gw1"))
        self.wire: list[str] = []

    async def _write_message(self, msg: MySensorsMessage) -> None:
        self.wire.append(encode_line(msg).rstrip("\n"))

    async def run(self) -> None:
        raise NotImplementedError


def test_queue_is_flushed_when_the_node_shows_it_is_awake(tmp_path: Path) -> None:
    async def scenario() -> None:
        gateway = RecordingGateway({"dataDir": str(tmp_path)})
        gateway.handle_line("7;255;3;0;33;")  # post-sleep: node 7 is a smart-sleep node
        gateway.awake_until["7"] = 0.0  # ... and asleep again
        await gateway.send(_dl("7;3;1;0;2;1", node="7", key="7;3;2"))
        await gateway.send(_dl("7;4;1;0;3;20", node="7", key="7;4;3"))
        await gateway.send(_dl("3;1;1;0;2;1", node="3"))  # node 3 never slept: written at once
        assert gateway.wire == ["3;1;1;0;2;1"]
        for awake_signal in ("7;255;3;0;22;1234", "7;255;3;0;21;0", "7;255;3;0;33;", "7;255;3;0;32;300"):
            gateway.wire.clear()
            gateway.awake_until["7"] = 0.0
            await gateway.send(_dl("7;3;1;0;2;0", node="7", key="7;3;2"))
            assert gateway.wire == []
            gateway.handle_line(awake_signal)
            await wait_for(lambda: gateway.wire, timeout=5, what=f"flush after {awake_signal}")
            await wait_for(lambda: not gateway.status()["sleep_queue"], timeout=5, what="queue empty")
            assert gateway.wire[-1] == "7;3;1;0;2;0"
        gateway.sleep_queue.close()

    asyncio.run(scenario())
