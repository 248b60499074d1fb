"""The downlink contract: the edge device that owns a gateway gets the downlinks addressed to it, whole and in
order, each naming its gateway; nobody else gets them.

Observed where the edge agent reads them: the callback the local edge registers (downlinks sent before it
registers wait for it), or the edge's down topic in AWS (moto's record of iot-data publishes, decoded as the
agent decodes them). Gateways ``gw1`` and ``gw2`` belong to one edge, ``plug`` to another, ``orphan`` to none
(``conftest.EDGES``).
"""

from __future__ import annotations

import pytest

from mycontroller_protocol.envelope import Downlink
from tests.contract.harnesses import DownlinkHarness


def mysensors(gateway: str, node: str, payload: str) -> Downlink:
    return Downlink(gateway, "mysensors_v2", f"{node};1;1;0;2;{payload}", node_id=node, key=f"{node}.1.V_STATUS")


def of_gateway(downlink: DownlinkHarness, gateway: str) -> list[Downlink]:
    """What the edge owning ``gateway`` received for that gateway."""
    owner = downlink.owner(gateway)
    assert owner is not None, f"no edge owns {gateway}"
    return [d for d in downlink.received(owner) if d.gateway_id == gateway]


def test_each_gateway_gets_its_own_downlinks_in_order(downlink: DownlinkHarness) -> None:
    sent = [mysensors("gw1", "1", "1"), mysensors("gw2", "7", "0"), mysensors("gw1", "2", "0"),
            Downlink("plug", "tasmota", "ON", topic="cmnd/plug/POWER"), mysensors("gw1", "1", "0")]

    downlink.sender.send(sent)

    assert of_gateway(downlink, "gw1") == [sent[0], sent[2], sent[4]]
    assert of_gateway(downlink, "gw2") == [sent[1]]
    assert of_gateway(downlink, "plug") == [sent[3]]
    assert of_gateway(downlink, "plug")[0].topic == "cmnd/plug/POWER"


def test_an_edge_gets_the_downlinks_of_its_gateways_only(downlink: DownlinkHarness) -> None:
    sent = [mysensors("gw1", "1", "1"), Downlink("plug", "tasmota", "OFF", topic="cmnd/plug/POWER"),
            mysensors("gw2", "3", "1")]

    downlink.sender.send(sent)

    for addressee in {downlink.owner(d.gateway_id) for d in sent}:
        assert addressee is not None
        assert downlink.received(addressee) == [d for d in sent if downlink.owner(d.gateway_id) == addressee]


def test_every_field_of_a_downlink_survives(downlink: DownlinkHarness) -> None:
    full = Downlink("gw1", "generic", '{"cmd": "set", "text": "Grüße \\"x\\"\\n"}', node_id="n-1", key="n-1.s.f",
                    topic="devices/n-1/set")

    downlink.sender.send([full])

    [got] = of_gateway(downlink, "gw1")
    assert got == full
    assert (got.gateway_id, got.provider, got.raw, got.node_id, got.key, got.topic) == (
        "gw1", "generic", full.raw, "n-1", "n-1.s.f", "devices/n-1/set")


def test_later_sends_follow_earlier_ones(downlink: DownlinkHarness) -> None:
    first, second, third = (mysensors("gw1", "1", str(i)) for i in range(3))

    downlink.sender.send([first])
    downlink.sender.send([second, third])

    assert of_gateway(downlink, "gw1") == [first, second, third]


def test_sending_nothing_delivers_nothing(downlink: DownlinkHarness) -> None:
    downlink.sender.send([])

    assert of_gateway(downlink, "gw1") == []


def test_a_large_batch_arrives_whole_and_in_order(downlink: DownlinkHarness) -> None:
    # about 300 KB for one gateway: more than one IoT Core publish may carry (128 KB)
    sent = [Downlink("gw1", "generic", f"{i:04d}" + "x" * 3_000, key=f"k{i}") for i in range(100)]

    downlink.sender.send(sent)

    assert of_gateway(downlink, "gw1") == sent


def test_a_gateway_no_edge_owns_gets_nothing_and_holds_nobody_back(downlink: DownlinkHarness) -> None:
    if downlink.owner("orphan") is not None:
        pytest.skip("this adapter routes by gateway (from before edge ownership): every gateway is reachable")
    sent = [mysensors("orphan", "1", "1"), mysensors("gw1", "1", "1"), mysensors("orphan", "2", "0")]

    downlink.sender.send(sent)  # no error: a retry could not find an owner either

    assert of_gateway(downlink, "gw1") == [sent[1]]
    assert all(d.gateway_id != "orphan" for edge in ("edge-a", "edge-b", "orphan", "local")
               for d in downlink.received(edge))
