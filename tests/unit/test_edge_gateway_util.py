"""The small pieces the gateway plugins stand on: durations, backoff, topic filters, payload paths, mappings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.gateways import GATEWAY_TYPES, build_gateway
from edge.gateways.generic_mqtt import GenericMqttGateway, MappingError, get_path
from edge.gateways.transport import _split_lines, topic_matches
from edge.gateways.util import Backoff, clean_id, parse_duration
from tests.integration.gateway_helpers import FakeContext


@pytest.mark.parametrize(("text", "seconds"), [
    ("10ms", 0.01), ("15s", 15.0), ("1m30s", 90.0), ("24h", 86400.0), ("2", 2.0), (3, 3.0), ("1.5s", 1.5),
    ("", 7.0), (None, 7.0), ("soon", 7.0), ("10 parsecs", 7.0),
])
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text, 7.0) == pytest.approx(seconds)


def test_backoff_starts_small_doubles_and_stops_at_the_cap() -> None:
    backoff = Backoff(15.0)
    assert [backoff.next() for _ in range(9)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    backoff.reset()
    assert backoff.next() == 0.25


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), [
    ("home/+/sensors", "home/kitchen/sensors", True),
    ("home/+/sensors", "home/kitchen/other", False),
    ("home/+/sensors", "home/kitchen/sensors/x", False),
    ("tele/#", "tele/tasmota_ABC/SENSOR", True),
    ("tele/#", "tele", True),
    ("tele/#", "stat/x", False),
    ("a/b", "a/b", True),
])
def test_topic_matches(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


def test_line_splitting_drops_over_long_junk() -> None:
    buffer = bytearray()
    lines, dropped = _split_lines(buffer, b"1;1;1;0;0;2")
    assert (lines, dropped) == ([], 0)
    lines, dropped = _split_lines(buffer, b"1.5\r\n" + b"x" * 5000 + b"\n2;1;1;0;0;3\npart")
    assert lines == ["1;1;1;0;0;21.5", "2;1;1;0;0;3"] and dropped == 5000 and bytes(buffer) == b"part"


def test_get_path_and_clean_id() -> None:
    data = {"a": {"b": [10, {"c": "x"}]}, "odd key": 1}
    assert get_path(data, "$.a.b[0]") == 10
    assert get_path(data, "$.a.b[1].c") == "x"
    assert get_path(data, "a.b[1].c") == "x"
    assert get_path(data, "$['odd key']") == 1
    assert get_path(data, "$") is data
    assert get_path(data, "$.a.missing") is not None and get_path(data, "$.a.b[5]") is get_path(data, "$.nope")
    assert clean_id("/boot/efi") == "boot_efi" and clean_id("living.room 1") == "living_room_1"


def _generic(tmp_path: Path, mappings: list[dict[str, Any]]) -> GenericMqttGateway:
    config = {"id": "g", "dataDir": str(tmp_path), "provider": {
        "type": "generic", "protocol": {"type": "mqtt", "broker": "tcp://127.0.0.1:1"}, "mappings": mappings}}
    gateway = build_gateway("g", config, FakeContext("g", "mc_json"))
    assert isinstance(gateway, GenericMqttGateway)
    return gateway


def test_generic_mapping_without_field_list_takes_every_scalar(tmp_path: Path) -> None:
    gateway = _generic(tmp_path, [{"topic": "zigbee/+", "node": "$.device", "source": "{0}"}])
    out = gateway.extract("zigbee/plug", json.dumps({"device": "plug.1", "power": 12.5, "state": True,
                                                     "mode": "auto", "nested": {"x": 1}}).encode())
    assert out == [
        {"n": "plug_1", "s": "zigbee", "f": "device", "v": "plug.1", "m": "string", "u": ""},
        {"n": "plug_1", "s": "zigbee", "f": "power", "v": 12.5, "m": "gauge_float", "u": ""},
        {"n": "plug_1", "s": "zigbee", "f": "state", "v": True, "m": "binary", "u": ""},
        {"n": "plug_1", "s": "zigbee", "f": "mode", "v": "auto", "m": "string", "u": ""},
    ]


def test_generic_plain_payloads_and_unmapped_topics(tmp_path: Path) -> None:
    gateway = _generic(tmp_path, [{"topic": "sensors/+/+", "node": "{1}", "source": "main",
                                   "fields": [{"path": "$", "id": "{2}", "metricType": "gauge_float"}]}])
    assert gateway.extract("sensors/attic/temp", b"17.5") == [
        {"n": "attic", "s": "main", "f": "temp", "v": 17.5, "m": "gauge_float", "u": ""}]
    assert gateway.extract("other/topic", b"1") == []
    assert gateway.counters["unmapped"] == 1


def test_bad_mappings_and_brokers_fail_at_build(tmp_path: Path) -> None:
    with pytest.raises(MappingError):
        _generic(tmp_path, [{"topic": "a/#", "fields": [{"id": "no path"}]}])
    with pytest.raises(MappingError):
        _generic(tmp_path, [{"topic": "a/#", "fields": [{"path": "$.x", "metricType": "loud"}]}])
    with pytest.raises(ValueError):
        build_gateway("t", {"provider": {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "ws://x"}}},
                      FakeContext("t", "tasmota"))


def test_every_plugin_is_registered() -> None:
    assert len(GATEWAY_TYPES) >= 7


@pytest.mark.parametrize(("provider", "subscriptions", "command"), [
    ({}, ["tasmota/discovery/#", "tele/#", "stat/#"], "cmnd/plug/POWER"),
    ({"topicPrefix": "home"}, ["tasmota/discovery/#", "home/tele/#", "home/stat/#"], "home/cmnd/plug/POWER"),
    ({"fullTopic": "%topic%/%prefix%/"}, ["tasmota/discovery/#", "+/tele/#", "+/stat/#"], "plug/cmnd/POWER"),
    ({"fullTopic": "site/%prefix%/%topic%/"}, ["tasmota/discovery/#", "site/tele/+/#", "site/stat/+/#"],
     "site/cmnd/plug/POWER"),
    ({"protocol": {"subscribe": "a/#, b/#"}}, ["a/#", "b/#"], "cmnd/plug/POWER"),
])
def test_tasmota_topics_follow_the_full_topic(provider: dict[str, Any], subscriptions: list[str],
                                              command: str) -> None:
    protocol = {"type": "mqtt", "broker": "tcp://127.0.0.1:1", **provider.pop("protocol", {})}
    gateway: Any = build_gateway("t", {"provider": {"type": "tasmota", "protocol": protocol, **provider}},
                                 FakeContext("t", "tasmota"))
    assert list(gateway.settings.subscriptions) == subscriptions
    assert gateway.command_topic("cmnd/plug/POWER") == command
    assert gateway.command_topic("custom/x/y/z") == "custom/x/y/z"
