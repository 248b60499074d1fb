"""The fault test: 10,000 messages through broker restarts and agent SIGKILLs, none lost, in order per gateway.

Real parts only: a mosquitto that is stopped and started again on the same port (with persistence, so that
the subscriber's session and what is queued for it survive), an agent subprocess (``python -m edge``) with two
counting gateways that is SIGKILLed twice — once while the spool drains a backlog, once during a broker
outage — and an MQTT subscriber collecting every publish. Duplicates on the wire are allowed (at-least-once);
after dropping them by message id, every (gateway, sequence) the spool ever handed out has arrived, first
arrivals are in sequence order per gateway, and every number each gateway counted is there.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from edge.spool import Spool
from mycontroller_protocol.envelope import Envelope
from tests.integration.edge_helpers import (
    COUNTER,
    AgentProcess,
    Broker,
    Collector,
    counter_gateway,
    read_progress,
    wait_until,
    write_config,
)

PER_GATEWAY = 5000
RATE = 500.0
"""Messages a second per gateway: 1,000/s in all, about twice a serial MySensors gateway's maximum."""
GATEWAYS = ("gw-a", "gw-b")
POLL = 0.1


@pytest.mark.timeout(180)
def test_ten_thousand_messages_survive_broker_restarts_and_agent_sigkills(broker: Broker, tmp_path: Path) -> None:
    collector = Collector(broker.host, broker.port, ["mc/edge-fault/up"], client_id="fault-collector").start()
    config = write_config(tmp_path / "edge.yaml", port=broker.port, edge_id="edge-fault",
                          gateways=[counter_gateway("gw-a", PER_GATEWAY, RATE),
                                    counter_gateway("gw-b", PER_GATEWAY, RATE, commandEvery=25)])
    data = tmp_path / "data"
    agent = AgentProcess(config).start()

    def emitted() -> int:
        return sum(read_progress(data, gateway) for gateway in GATEWAYS)

    def received() -> int:
        return len(collector.envelopes())

    def emitted_beyond(mark: int) -> bool:
        return emitted() >= mark

    try:
        wait_until(lambda: received() >= 1500, 30, "1,500 envelopes before the first outage", POLL)

        broker.stop()  # outage 1: the agent keeps reading its gateways into the spool
        wait_until(lambda: not _connected(agent), 15, "the agent to notice the outage", POLL)
        mark = emitted() + 1000
        wait_until(lambda: emitted_beyond(mark), 20, "1,000 messages spooled during the outage", POLL)
        broker.start()

        backlog_mark = received() + 1500
        wait_until(lambda: received() >= backlog_mark, 30, "the backlog to start draining", POLL)
        agent.kill()  # SIGKILL 1: publishes in flight, rows not yet acked
        agent.start()

        wait_until(lambda: emitted() >= 7000, 30, "7,000 messages emitted after the restart", POLL)
        broker.stop()  # outage 2 ...
        mark = emitted() + 500
        wait_until(lambda: emitted_beyond(mark), 20, "500 messages spooled during the second outage", POLL)
        agent.kill()  # ... and SIGKILL 2 while the broker is away: everything not acked is only in the spool
        agent.start()
        mark = emitted() + 300
        wait_until(lambda: emitted_beyond(mark), 20, "the restarted agent to carry on offline", POLL)
        broker.start()

        wait_until(lambda: _complete(collector.envelopes()), 60, "every number from both gateways", POLL)
        assert agent.terminate() == 0, f"the agent did not stop cleanly; see {agent.log}"
    finally:
        agent.kill()
        collector.stop()
        broker.stop()

    spool = Spool(data / "spool.sqlite")
    last_sequence = {gateway: spool.sequence(gateway) for gateway in GATEWAYS}
    assert spool.depth == 0, "the spool drained once the broker was back"
    spool.close()

    envelopes = collector.envelopes()
    first: dict[str, Envelope] = {}
    for envelope in envelopes:
        seen = first.setdefault(envelope.message_id, envelope)
        assert (seen.gateway_id, seen.sequence, seen.raw) == (envelope.gateway_id, envelope.sequence, envelope.raw), \
            f"message id {envelope.message_id} names two different messages"
    arrival: dict[str, list[int]] = defaultdict(list)
    numbers: dict[str, list[int]] = defaultdict(list)
    for envelope in first.values():  # dicts keep first-insertion order: the order of first arrival
        arrival[envelope.gateway_id].append(envelope.sequence)
        if envelope.provider == COUNTER:
            numbers[envelope.gateway_id].append(int(envelope.raw))
    for gateway in GATEWAYS:
        sequences = arrival[gateway]
        assert sequences == sorted(sequences), f"{gateway}: first arrivals out of sequence order"
        assert set(sequences) == set(range(1, last_sequence[gateway] + 1)), \
            f"{gateway}: missing sequences {sorted(set(range(1, last_sequence[gateway] + 1)) - set(sequences))[:10]}"
        assert set(numbers[gateway]) == set(range(1, PER_GATEWAY + 1))
    duplicates = len(envelopes) - len(first)
    resent_numbers = sum(len(numbers[g]) - PER_GATEWAY for g in GATEWAYS)
    print(f"fault test: {len(first)} distinct envelopes, {duplicates} duplicates on the wire, "
          f"{resent_numbers} numbers re-emitted after a kill, {broker.starts} broker starts")


def _connected(agent: AgentProcess) -> bool:
    status = agent.status()
    return bool(status and status["uplink"]["connected"])


def _complete(envelopes: list[Envelope]) -> bool:
    numbers: dict[str, set[int]] = defaultdict(set)
    for envelope in envelopes:
        if envelope.provider == COUNTER:
            numbers[envelope.gateway_id].add(int(envelope.raw))
    return all(len(numbers[gateway]) >= PER_GATEWAY for gateway in GATEWAYS)

