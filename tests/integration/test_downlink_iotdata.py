"""Downlinks over iot-data under moto (one publish per edge device, to the down topic of the edge owning the
gateways, split at 128 KB), and the in-process sender.

moto keeps every iot-data publish in its backend as ``(topic, payload)``; that is what the edge would receive.
Gateways ``gw1`` and ``plug`` belong to edge ``edge-a``, ``gw2`` and ``gw3`` to ``edge-b``; ``orphan`` to none.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.adapters.downlink_iotdata import MAX_PUBLISH_BYTES, DownlinkError, IotDataDownlink, split_bodies
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.core.ports import DownlinkSender
from mycontroller_protocol.envelope import Downlink, decode_downlinks, down_topic, encode_downlinks

REGION = "us-east-1"


@pytest.fixture(scope="module")
def iot_client() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield boto3.client("iot-data", region_name=REGION)


@pytest.fixture
def published(iot_client: Any) -> Iterator[list[tuple[str, bytes]]]:
    """moto's record of iot-data publishes, emptied for each test."""
    from moto.backends import get_backend

    record: list[tuple[str, bytes]] = get_backend("iot-data")[DEFAULT_ACCOUNT_ID][REGION].published_payloads
    record.clear()
    yield record
    record.clear()


_seq = itertools.count()


OWNERS = {"gw1": "edge-a", "plug": "edge-a", "gw2": "edge-b", "gw3": "edge-b"}


def edges(gateway_ids: Any) -> dict[str, str]:
    return {gateway: OWNERS[gateway] for gateway in gateway_ids if gateway in OWNERS}


def mysensors(gateway: str, node: str = "1", payload: str = "1") -> Downlink:
    return Downlink(gateway, "mysensors_v2", f"{node};1;1;0;2;{payload}", node_id=node, key=f"{node}.1.V_STATUS")


def as_text(payload: bytes | str) -> str:
    return payload.decode() if isinstance(payload, bytes) else payload


# --------------------------------------------------------------------------------------------- iot-data


def test_one_publish_per_edge_to_its_down_topic(iot_client: Any, published: list[tuple[str, bytes]]) -> None:
    sender: DownlinkSender = IotDataDownlink(iot_client, edges=edges)
    downlinks = [mysensors("gw1", "1"), mysensors("gw2", "7"), mysensors("gw1", "2", "0"),
                 Downlink("plug", "tasmota", "ON", topic="cmnd/plug/POWER")]
    sender.send(downlinks)
    assert [topic for topic, _ in published] == ["mc/edge-a/down", "mc/edge-b/down"]
    bodies = {topic: decode_downlinks(payload) for topic, payload in published}
    assert bodies["mc/edge-a/down"] == [downlinks[0], downlinks[2], downlinks[3]]  # in order, each naming its gateway
    assert bodies["mc/edge-b/down"] == [downlinks[1]]
    assert bodies["mc/edge-a/down"][2].topic == "cmnd/plug/POWER"
    assert as_text(published[0][1]) == encode_downlinks([downlinks[0], downlinks[2], downlinks[3]])
    assert isinstance(sender, IotDataDownlink)
    assert sender.calls["publish"] == sender.publishes == 2 and sender.calls["downlinks"] == 4


def test_a_gateway_no_edge_owns_is_not_published_and_holds_nobody_back(
        iot_client: Any, published: list[tuple[str, bytes]], caplog: pytest.LogCaptureFixture) -> None:
    sender = IotDataDownlink(iot_client, edges=edges)
    sender.send([mysensors("orphan"), mysensors("gw2")])  # no error: a retry would not find an owner either
    assert [(topic, decode_downlinks(p)) for topic, p in published] == [("mc/edge-b/down", [mysensors("gw2")])]
    assert sender.calls["unrouted"] == 1 and any("orphan" in r.getMessage() for r in caplog.records)


def test_the_topic_prefix_is_configurable(iot_client: Any, published: list[tuple[str, bytes]]) -> None:
    IotDataDownlink(iot_client, topic_prefix="site-a", edges=edges).send([mysensors("gw1")])
    assert [topic for topic, _ in published] == [down_topic("edge-a", "site-a")] == ["site-a/edge-a/down"]


def test_publishes_are_qos_1(published: list[tuple[str, bytes]]) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def publish(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            return {}

    recorder = Recorder()
    IotDataDownlink(recorder, edges=edges).send([mysensors("gw1"), mysensors("gw1", "2")])
    assert [(c["topic"], c["qos"]) for c in recorder.calls] == [("mc/edge-a/down", 1)]
    assert decode_downlinks(recorder.calls[0]["payload"]) == [mysensors("gw1"), mysensors("gw1", "2")]


def test_a_group_over_128_kb_is_split_into_several_publishes(iot_client: Any,
                                                             published: list[tuple[str, bytes]]) -> None:
    downlinks = [Downlink("gw1", "generic", "x" * 3_000, key=f"k{i}") for i in range(100)]  # ~300 KB together
    sender = IotDataDownlink(iot_client, edges=edges)
    sender.send(downlinks)
    assert len(published) == 3 and {topic for topic, _ in published} == {"mc/edge-a/down"}
    assert all(len(payload) <= MAX_PUBLISH_BYTES for _, payload in published)
    assert [d for _, payload in published for d in decode_downlinks(payload)] == downlinks  # all, in order
    assert sender.calls["publish"] == 3 and sender.calls["bytes"] == sum(len(p) for _, p in published)


@pytest.mark.parametrize("limit", [60, 100, 250, 1_000])
def test_split_bodies_fill_up_to_the_limit_exactly(limit: int) -> None:
    downlinks = [Downlink("g", "p", "r" * (i % 17), key=str(i)) for i in range(60)]
    parts = list(split_bodies(downlinks, limit))
    assert [d for group, _ in parts for d in group] == downlinks
    for index, (group, body) in enumerate(parts):
        if body is None:  # only a downlink that cannot fit alone
            assert len(group) == 1 and len(encode_downlinks(group).encode()) > limit
            continue
        assert body == encode_downlinks(group) and len(body.encode()) <= limit
        following = parts[index + 1][0] if index + 1 < len(parts) else []
        if following and parts[index + 1][1] is not None:  # the next one would not have fit in this body
            assert len(encode_downlinks([*group, following[0]]).encode()) > limit


def test_a_downlink_too_big_for_any_publish_fails_alone(iot_client: Any, published: list[tuple[str, bytes]]) -> None:
    huge = Downlink("gw1", "generic", "x" * (MAX_PUBLISH_BYTES + 1))
    with pytest.raises(DownlinkError) as raised:
        IotDataDownlink(iot_client, edges=edges).send([huge, mysensors("gw1"), mysensors("gw2")])
    assert [d for d, _ in raised.value.failed] == [huge] and "publish limit" in raised.value.failed[0][1]
    assert [(topic, decode_downlinks(p)) for topic, p in published] == [
        ("mc/edge-a/down", [mysensors("gw1")]), ("mc/edge-b/down", [mysensors("gw2")])]


def test_one_edge_failing_does_not_hold_back_the_others(published: list[tuple[str, bytes]]) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.topics: list[str] = []

        def publish(self, topic: str, qos: int, payload: bytes) -> dict[str, Any]:
            if topic == "mc/edge-a/down":
                raise ConnectionError("broker unreachable")
            self.topics.append(topic)
            return {}

    client = Flaky()
    sender = IotDataDownlink(client, edges=edges)
    with pytest.raises(DownlinkError, match="gw1") as raised:
        sender.send([mysensors("gw1"), mysensors("gw2"), mysensors("gw1", "2"), mysensors("gw3")])
    assert client.topics == ["mc/edge-b/down"]
    assert [d.node_id for d, _ in raised.value.failed] == ["1", "2"]
    assert isinstance(raised.value.__cause__, ConnectionError)
    assert sender.calls["publish"] == 1 and sender.calls["downlinks"] == 2


def test_nothing_to_send_publishes_nothing(iot_client: Any, published: list[tuple[str, bytes]]) -> None:
    sender = IotDataDownlink(iot_client, edges=edges)
    sender.send([])
    assert published == [] and sender.calls["publish"] == 0


# --------------------------------------------------------------------------------------------- in-process


def test_local_delivery_groups_per_edge_and_keeps_history() -> None:
    local = LocalDownlink(edges=edges)
    got: dict[str, list[list[Downlink]]] = {"edge-a": [], "edge-b": []}
    local.register("edge-a", got["edge-a"].append)
    local.register("edge-b", got["edge-b"].append)
    sender: DownlinkSender = local
    batch = [mysensors("gw1"), mysensors("gw2"), mysensors("gw1", "2"), mysensors("orphan")]
    sender.send(batch)
    assert got == {"edge-a": [[batch[0], batch[2]]], "edge-b": [[batch[1]]]}
    assert local.sent == batch and local.delivered == 3 and local.unrouted == 1


def test_without_an_address_book_every_gateway_is_the_local_edges() -> None:
    local = LocalDownlink()
    received: list[Downlink] = []
    local.register("local", received.extend)
    local.send([mysensors("gw1"), mysensors("anything")])
    assert [d.gateway_id for d in received] == ["gw1", "anything"]


def test_downlinks_wait_for_an_edge_that_is_not_registered_yet() -> None:
    local = LocalDownlink(edges=edges)
    early = [mysensors("gw1", "1"), mysensors("plug", "2")]
    local.send(early)
    assert local.pending("edge-a") == early and local.sent == early
    received: list[Downlink] = []
    local.register("edge-a", received.extend)
    assert received == early and local.pending("edge-a") == []
    local.send([mysensors("gw1", "3")])
    assert [d.node_id for d in received] == ["1", "2", "3"]  # pending first, then live, in order


def test_pending_lists_are_bounded_per_edge() -> None:
    local = LocalDownlink(edges=edges, max_pending_per_edge=3)
    local.send([mysensors("gw1", str(i)) for i in range(5)] + [mysensors("gw2", "9")])
    assert [d.node_id for d in local.pending("edge-a")] == ["2", "3", "4"]  # the newest kept
    assert [d.node_id for d in local.pending("edge-b")] == ["9"]
    assert local.dropped == 2


def test_unregister_makes_downlinks_wait_again() -> None:
    local = LocalDownlink(edges=edges)
    received: list[Downlink] = []
    local.register("edge-a", received.extend)
    local.unregister("edge-a")
    local.send([mysensors("gw1")])
    assert received == [] and local.pending("edge-a") == [mysensors("gw1")]


def test_a_failing_callback_is_logged_and_does_not_affect_other_edges(caplog: pytest.LogCaptureFixture) -> None:
    local = LocalDownlink(edges=edges)

    def broken(downlinks: list[Downlink]) -> None:
        raise OSError("serial port gone")

    received: list[Downlink] = []
    local.register("edge-a", broken)
    local.register("edge-b", received.extend)
    local.send([mysensors("gw1"), mysensors("gw2")])
    assert received == [mysensors("gw2")]
    assert (local.failed, local.delivered) == (1, 1)
    assert any("edge-a" in r.getMessage() and r.exc_info for r in caplog.records)


def test_history_is_bounded() -> None:
    local = LocalDownlink(max_history=4)
    local.send([mysensors("gw1", str(i)) for i in range(10)])
    assert [d.node_id for d in local.sent] == ["6", "7", "8", "9"]


def test_a_callback_may_send_again() -> None:
    """The edge simulator answers a command with a command: the sender's lock is re-entrant."""
    local = LocalDownlink(edges=edges)
    received: list[str] = []

    def echo(downlinks: list[Downlink]) -> None:
        for downlink in downlinks:
            received.append(downlink.raw)
            if downlink.gateway_id == "gw1":
                local.send([Downlink("gw2", "p", "echo " + downlink.raw)])

    local.register("edge-a", echo)
    local.register("edge-b", echo)
    local.send([Downlink("gw1", "p", "ping")])
    assert received == ["ping", "echo ping"]
