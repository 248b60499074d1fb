"""The processor fed real MySensors traffic, checked field by field, replayed, shuffled and mixed with garbage."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.adapters.metrics_embedded import EmbeddedMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.model import Kind, iso_from_ms
from chalicelib.core.ports import ListQuery, MetricQuery
from chalicelib.core.processor import Processor
from chalicelib.core.providers.mysensors.interpreter import MySensorsInterpreter
from mycontroller_protocol.envelope import Envelope

FIXTURES = Path(__file__).parent.parent / "fixtures"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CLOCK_S = 1_767_225_600.0


def envelopes(
    lines: list[str], gateway: str = "gw1", t0: int = T0, seq0: int = 1, step_ms: int = 1000
) -> list[Envelope]:
    return [
        Envelope(gateway, "mysensors_v2", t0 + i * step_ms, seq0 + i, f"e1-{gateway}-{seq0 + i}", line)
        for i, line in enumerate(lines)
    ]


def make_processor(repo: MemoryRepository | None = None) -> Processor:
    repo = repo or MemoryRepository(None)
    metrics = EmbeddedMetricStore(":memory:")
    return Processor(
        repo,
        metrics,
        {"mysensors_v2": MySensorsInterpreter(clock=lambda: CLOCK_S)},
        clock=lambda: T0,
    )


def traffic() -> list[str]:
    return json.loads((FIXTURES / "mysensors_traffic.json").read_text())["lines"]


def state_of(repo: MemoryRepository) -> dict[str, Any]:
    everything = ListQuery(limit=0)
    return {
        kind.value: repo.query(kind, everything).data for kind in (Kind.GATEWAY, Kind.NODE, Kind.SOURCE, Kind.FIELD)
    }


def test_node_presenting_itself_and_sensors_gives_resources_field_by_field() -> None:
    processor = make_processor()
    result = processor.process(envelopes(traffic()))
    processor.acknowledge(result)
    assert result.failures == []
    repo = processor.repository

    node = repo.get(Kind.NODE, "gw1.12")
    assert node is not None
    assert node["gatewayId"] == "gw1" and node["nodeId"] == "12"
    assert node["name"] == "Weather station"
    assert node["labels"]["library_version"] == "2.3.2"
    assert node["labels"]["version"] == "1.4"
    assert node["labels"]["ms_node_type"] == "node"
    assert node["labels"]["sleep_node"] == "true"
    assert node["others"]["battery_level"] == 87
    assert node["others"]["heartbeat"] == 1234
    assert node["others"]["parent_id"] == "0"
    assert node["state"]["status"] == "up"
    assert node["lastSeen"] is not None

    temperature_source = repo.get(Kind.SOURCE, "gw1.12.1")
    assert temperature_source is not None
    assert temperature_source["name"] == "Outdoor temp"
    assert temperature_source["labels"]["ms_type_string"] == "S_TEMP"

    temperature = repo.get(Kind.FIELD, "gw1.12.1.V_TEMP")
    assert temperature is not None
    assert temperature["metricType"] == "gauge_float"
    assert temperature["unit"] == "°C"
    assert temperature["current"]["value"] == 23.5
    assert temperature["previous"]["value"] == 22.0
    assert temperature["current"]["isReceived"] is True

    humidity = repo.get(Kind.FIELD, "gw1.12.2.V_HUM")
    assert humidity is not None and humidity["current"]["value"] == 61.0 and humidity["unit"] == "%"

    switch = repo.get(Kind.FIELD, "gw1.12.3.V_STATUS")
    assert switch is not None and switch["metricType"] == "binary" and switch["current"]["value"] is True

    # I_TIME is answered in the gateway's time zone (UTC by default), I_CONFIG metric.
    lines = [d.raw for d in result.downlinks]
    assert f"12;255;3;0;1;{int(CLOCK_S)}" in lines
    assert "12;255;3;0;6;M" in lines
    # The request for the switch is answered with the stored value.
    assert "12;3;1;0;2;1" in lines
    # I_ID_REQUEST from an unassigned node gets the first free id (12 is taken, 1 is free).
    assert "255;255;3;0;4;1" in lines
    assert repo.get(Kind.NODE, "gw1.1") is not None

    kinds = {(e.type, e.entity_type) for e in result.events}
    assert ("created", "node") in kinds and ("created", "field") in kinds and ("requested", "field") in kinds


def test_time_answer_follows_gateway_time_zone() -> None:
    processor = make_processor()
    processor.repository.put(
        Kind.GATEWAY,
        {
            "id": "gw1",
            "provider": {"type": "mysensors_v2", "timezone": "Europe/Berlin", "unitSystem": "imperial"},
            "labels": {},
            "others": {},
            "state": {"status": "up"},
        },
    )
    result = processor.process(envelopes(["5;255;3;0;1;", "5;255;3;0;6;0"]))
    lines = [d.raw for d in result.downlinks]
    assert f"5;255;3;0;1;{int(CLOCK_S) + 3600}" in lines  # CET in January
    assert "5;255;3;0;6;I" in lines


def test_replayed_twice_and_shuffled_gives_the_same_state() -> None:
    lines = traffic()
    batch = envelopes(lines)

    once = make_processor()
    once.acknowledge(once.process(batch))

    twice = make_processor()
    twice.acknowledge(twice.process(batch))
    again = twice.process(batch)
    assert again.events == [] and again.downlinks == [] and again.repo_writes == 0
    assert again.duplicates == len(batch)

    shuffled = make_processor()
    mixed = batch[:]
    random.Random(7).shuffle(mixed)
    # Delivered in three shuffled batches, out of order.
    for part in (mixed[:5], mixed[5:11], mixed[11:]):
        shuffled.acknowledge(shuffled.process(part))

    assert state_of(once.repository) == state_of(twice.repository)
    expected_fields = {f["id"]: f["current"] for f in state_of(once.repository)["field"]}
    got_fields = {f["id"]: f["current"] for f in state_of(shuffled.repository)["field"]}
    assert got_fields == expected_fields


def test_many_updates_to_one_field_are_one_write_and_one_event_but_every_metric() -> None:
    processor = make_processor()
    processor.process(envelopes(["3;1;0;0;6;Room"]))
    values = [f"{20 + i / 10:.1f}" for i in range(100)]
    result = processor.process(envelopes([f"3;1;1;0;0;{v}" for v in values], t0=T0 + 10_000, seq0=10))
    field_events = [e for e in result.events if e.entity_type == "field"]
    assert len(field_events) == 1
    assert field_events[0].entity is not None
    assert field_events[0].entity["current"]["value"] == float(values[-1])
    assert field_events[0].entity["previous"]["value"] == float(values[-2])
    field_writes = result.repo_writes - sum(1 for e in result.events if e.entity_type != "field")
    assert field_writes == 1
    assert result.metric_points == 100
    rows = processor.metrics.query(MetricQuery("gw1.3.1.V_TEMP", "gauge_float", T0, T0 + 1_000_000))
    assert [r["value"] for r in rows] == [float(v) for v in values]


def test_older_update_does_not_overwrite_but_reaches_metrics() -> None:
    processor = make_processor()
    processor.process(envelopes(["4;1;1;0;0;25.0"], t0=T0 + 60_000, seq0=50))
    result = processor.process(envelopes(["4;1;1;0;0;19.0"], t0=T0, seq0=10))
    assert result.stale == 1
    field = processor.repository.get(Kind.FIELD, "gw1.4.1.V_TEMP")
    assert field is not None and field["current"]["value"] == 25.0
    rows = processor.metrics.query(MetricQuery("gw1.4.1.V_TEMP", "gauge_float", T0 - 1, T0 + 120_000))
    assert [r["value"] for r in rows] == [19.0, 25.0]
    # Same timestamp: the sequence decides.
    processor.process(envelopes(["4;1;1;0;0;26.0"], t0=T0 + 60_000, seq0=51))
    processor.process(envelopes(["4;1;1;0;0;24.0"], t0=T0 + 60_000, seq0=49))
    field = processor.repository.get(Kind.FIELD, "gw1.4.1.V_TEMP")
    assert field is not None and field["current"]["value"] == 26.0


def test_no_change_since_moves_only_when_the_value_changes() -> None:
    processor = make_processor()
    processor.process(envelopes(["6;1;1;0;2;1"], t0=T0, seq0=1))
    processor.process(envelopes(["6;1;1;0;2;1"], t0=T0 + 5000, seq0=2))
    field = processor.repository.get(Kind.FIELD, "gw1.6.1.V_STATUS")
    assert field is not None and field["noChangeSince"] == iso_from_ms(T0)
    processor.process(envelopes(["6;1;1;0;2;0"], t0=T0 + 9000, seq0=3))
    field = processor.repository.get(Kind.FIELD, "gw1.6.1.V_STATUS")
    assert field is not None
    assert field["noChangeSince"] == iso_from_ms(T0 + 9000)
    assert field["previous"]["value"] is True and field["current"]["value"] is False


def test_bad_messages_fail_alone_and_the_rest_completes() -> None:
    processor = make_processor()
    lines = [
        "7;1;1;0;0;21.5",
        "7;1;1;0",
        "garbage \x00\xff",
        "7;2;1;0;1;55",
        "7;1;1;0;0;not-a-number",
        "300;1;1;0;0;1",
        "7;255;3;0;0;abc",
    ]
    batch = envelopes(lines)
    result = processor.process(batch)
    failed = {f.message_id for f in result.failures}
    assert failed == {batch[i].message_id for i in (1, 2, 4, 5, 6)}
    assert all(f.reason for f in result.failures)
    assert {batch[0].message_id, batch[3].message_id} <= set(result.applied_ids)
    field = processor.repository.get(Kind.FIELD, "gw1.7.1.V_TEMP")
    assert field is not None and field["current"]["value"] == 21.5
    humidity = processor.repository.get(Kind.FIELD, "gw1.7.2.V_HUM")
    assert humidity is not None and humidity["current"]["value"] == 55.0


def test_no_free_node_id_is_a_clear_failure() -> None:
    repo = MemoryRepository(None)
    processor = make_processor(repo)
    processor.process(envelopes([f"{n};255;3;0;0;50" for n in range(1, 255)]))
    result = processor.process(envelopes(["255;255;3;0;3;"], seq0=1000))
    assert len(result.failures) == 1
    assert "no free node id" in result.failures[0].reason
    assert result.downlinks == []


def test_ignore_labels_keep_user_choices() -> None:
    processor = make_processor()
    processor.process(envelopes(["8;1;1;0;0;20"], seq0=1))
    field = processor.repository.get(Kind.FIELD, "gw1.8.1.V_TEMP")
    assert field is not None
    processor.repository.put(
        Kind.FIELD, {**field, "name": "Kitchen", "unit": "°F", "labels": {"ignore_name": "true", "IGNORE_UNIT": "true"}}
    )
    processor.process(envelopes(["8;1;1;0;0;21"], seq0=2, t0=T0 + 10_000))
    field = processor.repository.get(Kind.FIELD, "gw1.8.1.V_TEMP")
    assert field is not None and field["name"] == "Kitchen" and field["unit"] == "°F"
    assert field["current"]["value"] == 21.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80).map(lambda b: b.decode("utf-8", errors="replace")),
            st.text(max_size=60),
            st.tuples(
                st.integers(-2, 300),
                st.integers(-2, 300),
                st.integers(-1, 6),
                st.integers(-1, 2),
                st.integers(-1, 60),
                st.text(max_size=30),
            ).map(lambda t: ";".join(map(str, t))),
        ),
        max_size=30,
    )
)
def test_arbitrary_input_never_escapes_and_good_lines_beside_it_are_processed(noise: list[str]) -> None:
    processor = make_processor()
    good = ["9;1;1;0;0;20.5", "9;2;1;0;1;40"]
    lines = noise[: len(noise) // 2] + good + noise[len(noise) // 2 :]
    batch = envelopes(lines)
    result = processor.process(batch)
    assert len(result.failures) + len(result.applied_ids) == len({e.message_id for e in batch})
    field = processor.repository.get(Kind.FIELD, "gw1.9.2.V_HUM")
    assert field is not None
    assert (field["current"]["timestamp"] or "") >= iso_from_ms(T0)


def test_fixture_is_real_traffic() -> None:
    lines = traffic()
    assert len(lines) >= 15 and all(";" in line for line in lines)


@pytest.mark.parametrize("provider_line", ["not json", '{"type": "gateway_state", "status": "sideways"}'])
def test_edge_state_messages_are_validated(provider_line: str) -> None:
    repo = MemoryRepository(None)
    processor = Processor(repo, EmbeddedMetricStore(":memory:"), clock=lambda: T0)
    good = Envelope("gw2", "edge", T0, 1, "x-1", '{"type": "gateway_state", "status": "down", "message": "unplugged"}')
    bad = Envelope("gw2", "edge", T0 + 1, 2, "x-2", provider_line)
    result = processor.process([good, bad])
    assert [f.message_id for f in result.failures] == ["x-2"]
    gateway = repo.get(Kind.GATEWAY, "gw2")
    assert gateway is not None and gateway["state"]["status"] == "down"
    assert gateway["state"]["message"] == "unplugged"


def test_time_and_config_are_left_to_the_edge_agent_that_runs_the_gateway() -> None:
    processor = make_processor()
    processor.repository.put(Kind.GATEWAY, {
        "id": "gw1", "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "portname": "/dev/ttyUSB0"}},
        "labels": {}, "others": {}, "state": {"status": "up"},
    })
    result = processor.process(envelopes(["5;255;3;0;1;", "5;255;3;0;6;0"]))
    assert result.downlinks == [] and result.failures == []
    node = processor.repository.get(Kind.NODE, "gw1.5")
    assert node is not None and node["state"]["status"] == "up"


def test_a_node_is_a_sleeper_until_it_presents_itself_again_unless_pinned() -> None:
    processor = make_processor()
    repo = processor.repository
    processor.acknowledge(processor.process(envelopes(["5;255;0;0;17;2.3.2", "5;255;3;0;32;500"])))
    node = repo.get(Kind.NODE, "gw1.5")
    assert node is not None and node["labels"]["sleep_node"] == "true"
    # re-flashed with an always-on sketch: it presents itself and never says it sleeps
    processor.acknowledge(processor.process(envelopes(["5;255;0;0;17;2.3.2", "5;1;1;0;0;20.5"], t0=T0 + 60_000,
                                                      seq0=10)))
    node = repo.get(Kind.NODE, "gw1.5")
    assert node is not None and "sleep_node" not in node["labels"]
    # a smart-sleep sketch says so again after presenting
    processor.acknowledge(processor.process(envelopes(["5;255;0;0;17;2.3.2", "5;255;3;0;32;500"], t0=T0 + 120_000,
                                                      seq0=20)))
    node = repo.get(Kind.NODE, "gw1.5")
    assert node is not None and node["labels"]["sleep_node"] == "true"
    # pinned by the user: what the node shows no longer changes it
    repo.put(Kind.NODE, {**node, "labels": {**node["labels"], "ignore_sleep_node": "true"}})
    processor.acknowledge(processor.process(envelopes(["5;255;0;0;17;2.3.2"], t0=T0 + 180_000, seq0=30)))
    node = repo.get(Kind.NODE, "gw1.5")
    assert node is not None and node["labels"]["sleep_node"] == "true"


def test_the_edges_firmware_update_reports_land_on_the_node() -> None:
    processor = make_processor()
    repo = processor.repository
    reports = [
        {"type": "node_ota", "node": "7", "firmware": "blink", "state": "running", "message": "", "blocksSent": 48,
         "blocks": 192},
        {"type": "node_ota", "node": "7", "firmware": "blink", "state": "done", "message": "runs blink",
         "blocksSent": 192, "blocks": 192},
    ]
    result = processor.process(envelopes([json.dumps(reports[0])]))
    processor.acknowledge(result)
    assert result.failures == []
    node = repo.get(Kind.NODE, "gw1.7")
    assert node is not None
    assert {k: node["others"][k] for k in ("ota_state", "ota_running", "ota_progress", "ota_blocks_sent",
                                            "ota_block_total", "ota_firmware")} == {
        "ota_state": "running", "ota_running": True, "ota_progress": 25, "ota_blocks_sent": 48,
        "ota_block_total": 192, "ota_firmware": "blink"}
    processor.acknowledge(processor.process(envelopes([json.dumps(reports[1])], t0=T0 + 5000, seq0=2)))
    node = repo.get(Kind.NODE, "gw1.7")
    assert node is not None and node["others"]["ota_state"] == "done" and node["others"]["ota_progress"] == 100
    assert node["others"]["ota_end_time"] == iso_from_ms(T0 + 5000)
    # reset's erase done: the flag goes
    repo.put(Kind.NODE, {**node, "labels": {"ms_erase_eeprom": "true"}})
    processor.acknowledge(processor.process(envelopes(['{"type":"node_ota","node":"7","eepromErased":true}'],
                                                      t0=T0 + 9000, seq0=3)))
    node = repo.get(Kind.NODE, "gw1.7")
    assert node is not None and "ms_erase_eeprom" not in node["labels"]
    # a report that is not one fails alone, saying why
    bad = processor.process(envelopes(['{"type":"node_ota","node":"7","state":"flying","blocksSent":1,"blocks":0}',
                                       '{"type":"other"}'], t0=T0 + 10_000, seq0=4))
    assert len(bad.failures) == 2 and all("node_ota" in str(f) for f in bad.failures)


def test_an_edge_whose_firmware_url_expired_gets_a_new_one_in_the_answer() -> None:
    from mycontroller_protocol.envelope import Downlink

    asked: list[tuple[str, str]] = []

    def link(gateway_id: str, node_id: str) -> Downlink | None:
        asked.append((gateway_id, node_id))
        return Downlink(gateway_id, "mysensors_v2", '{"ctl":"ota","node":"7","refresh":true}', node_id=node_id)

    processor = Processor(MemoryRepository(None), EmbeddedMetricStore(":memory:"),
                          {"mysensors_v2": MySensorsInterpreter(clock=lambda: CLOCK_S, firmware_link=link)},
                          clock=lambda: T0)
    report = {"type": "node_ota", "node": "7", "firmware": "blink", "state": "fetching", "message": "expired",
              "blocksSent": 0, "blocks": 0, "urlRequest": True}
    result = processor.process(envelopes([json.dumps(report), json.dumps({**report, "urlRequest": False})]))
    assert result.failures == [] and asked == [("gw1", "7")]
    assert [d.raw for d in result.downlinks] == ['{"ctl":"ota","node":"7","refresh":true}']
