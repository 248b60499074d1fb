"""The downlink contract: each gateway's edge agent gets the downlinks addressed to it, whole and in order.

Observed where the edge reads them: the callback the local edge registers (downlinks sent before it registers
wait for it), or the gateway's down topic in AWS (moto's record of iot-data publishes, decoded as the agent
decodes them).
"""

from __future__ import annotations

from chalicelib.core.envelope import Downlink
from tests.contract.harnesses import DownlinkHarness


def mysensors(gateway: str, node: str, payload: str) -> Downlink:
    return Downlink(gateway, "mysensors_v2", f"{node};1;1;0;2;{payload}", node_id=node, key=f"{node}.1.V_STATUS")


def test_each_gateway_gets_its_own_downlinks_in_order(downlink: DownlinkHarness) -> None:
    sent = [mysensors("gw1", "1", "1"), mysensors("gw2", "7", "0"), mysensors("gw1", "2", "0"),
            Downlink("plug", "tasmota", "ON", topic="cmnd/plug/POWER"), mysensors("gw1", "1", "0")]

    downlink.sender.send(sent)

    assert downlink.received("gw1") == [sent[0], sent[2], sent[4]]
    assert downlink.received("gw2") == [sent[1]]
    assert downlink.received("plug") == [sent[3]]
    assert downlink.received("plug")[0].topic == "cmnd/plug/POWER"
    assert downlink.received("gw3") == []


def test_every_field_of_a_downlink_survives(downlink: DownlinkHarness) -> None:
    full = Downlink("gw1", "generic", '{"cmd": "set", "text": "Grüße \\"x\\"\\n"}', node_id="n-1", key="n-1.s.f",
                    topic="devices/n-1/set")

    downlink.sender.send([full])

    [got] = downlink.received("gw1")
    assert got == full
    assert (got.gateway_id, got.provider, got.raw, got.node_id, got.key, got.topic) == (
        "gw1", "generic", full.raw, "n-1", "n-1.s.f", "devices/n-1/set")


def test_later_sends_follow_earlier_ones(downlink: DownlinkHarness) -> None:
    first, second, third = (mysensors("gw1", "1", str(i)) for i in range(3))

    downlink.sender.send([first])
    downlink.sender.send([second, third])

    assert downlink.received("gw1") == [first, second, third]


def test_sending_nothing_delivers_nothing(downlink: DownlinkHarness) -> None:
    downlink.sender.send([])

    assert downlink.received("gw1") == []


def test_a_large_batch_arrives_whole_and_in_order(downlink: DownlinkHarness) -> None:
    # about 300 KB for one gateway: more than one IoT Core publish may carry (128 KB)
    sent = [Downlink("gw1", "generic", f"{i:04d}" + "x" * 3_000, key=f"k{i}") for i in range(100)]

    downlink.sender.send(sent)

    assert downlink.received("gw1") == sent
