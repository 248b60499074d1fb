"""InfluxDBMetricStore's writes against a real VictoriaMetrics (its InfluxDB-compatible ``/api/v2/write``).

VictoriaMetrics names each series ``<measurement>_<field>`` (``mc_gauge_float_data_value``) with the line's tags
as labels; its export API gives back values and millisecond timestamps exactly, so the reference's layout can be
checked end to end. It has no Flux, so reads are covered by ``tests/unit/test_metrics_flux.py``. It keeps
numbers only: a text field (string, geo) arrives as a series whose samples carry no text.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from chalicelib.adapters.metrics_influxdb import InfluxDBMetricStore
from chalicelib.core.ports import MetricPoint
from tests.contract.metric_fixtures import T0, point

_gateways = iter(range(1, 1_000_000))


@pytest.fixture
def gateway() -> str:
    """A gateway id of its own per test, so that tests sharing the server do not see each other's series."""
    return f"gw{next(_gateways)}"


def export(url: str, gateway: str) -> dict[str, dict[str, Any]]:
    """Every series of a gateway by ``__name__`` + ``ID``: ``{"labels", "points": [(ts, value), ...]}``."""
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=10).read()  # make fresh rows searchable
    match = urllib.parse.quote(f'{{__name__=~"mc_.+", GatewayID="{gateway}"}}')
    with urllib.request.urlopen(f"{url}/api/v1/export?match[]={match}", timeout=10) as response:
        lines = response.read().decode().splitlines()
    result: dict[str, dict[str, Any]] = {}
    for line in lines:
        item = json.loads(line)
        labels = item["metric"]
        key = f"{labels['__name__']} {labels.get('ID')}"
        entry = result.setdefault(key, {"labels": labels, "points": []})
        entry["points"] = sorted(entry["points"] + list(zip(item["timestamps"], item["values"], strict=True)))
    return result


def store_for(url: str, **options: Any) -> InfluxDBMetricStore:
    return InfluxDBMetricStore(url, token="not-checked", org="mycontroller", bucket="metrics", **options)


def test_points_land_in_the_reference_layout(victoria_metrics: str, gateway: str) -> None:
    store = store_for(victoria_metrics, batch_size=1000, flush_interval_ms=60_000)
    try:
        store.write([
            point(f"{gateway}.1.1.temp", "gauge_float", 21.5, T0 + 1),
            point(f"{gateway}.1.1.temp", "gauge_float", 22.25, T0 + 2001),
            point(f"{gateway}.1.2.level", "gauge", 42, T0 + 3),
            point(f"{gateway}.1.3.pulses", "counter", 1234567, T0 + 4),
            point(f"{gateway}.1.4.door", "binary", True, T0 + 5),
            point(f"{gateway}.1.4.door", "binary", False, T0 + 6),
            point(f"{gateway}.1.5.mode", "string", "heat", T0 + 7),
            point(f"{gateway}.1.6.where", "geo", "52.52;13.405", T0 + 8),
            point(f"{gateway}.1.7.nothing", "none", "x", T0 + 9),
            MetricPoint(f"{gateway}.1.battery", gateway, "1", "", "battery", "gauge_float", 87.0, T0 + 10),
        ])
        store.flush()

        series = export(victoria_metrics, gateway)
    finally:
        store.close()

    def labels(node: str, source: str, field: str) -> dict[str, str]:
        found = {"GatewayID": gateway, "NodeID": node, "FieldID": field,
                 "ID": ".".join(part for part in (gateway, node, source, field) if part)}
        return {**found, "SourceID": source} if source else found

    assert set(series) == {
        f"mc_gauge_float_data_value {gateway}.1.1.temp", f"mc_gauge_int_data_value {gateway}.1.2.level",
        f"mc_counter_data_value {gateway}.1.3.pulses", f"mc_binary_data_value {gateway}.1.4.door",
        f"mc_string_data_value {gateway}.1.5.mode", f"mc_geo_data_value {gateway}.1.6.where",
        f"mc_gauge_float_data_value {gateway}.1.battery"}
    temp = series[f"mc_gauge_float_data_value {gateway}.1.1.temp"]
    assert temp["labels"] == {"__name__": "mc_gauge_float_data_value", **labels("1", "1", "temp")}
    assert temp["points"] == [(T0 + 1, 21.5), (T0 + 2001, 22.25)]
    assert series[f"mc_gauge_int_data_value {gateway}.1.2.level"]["points"] == [(T0 + 3, 42)]
    assert series[f"mc_counter_data_value {gateway}.1.3.pulses"]["points"] == [(T0 + 4, 1234567)]
    door = series[f"mc_binary_data_value {gateway}.1.4.door"]
    assert door["labels"] == {"__name__": "mc_binary_data_value", **labels("1", "4", "door")}
    assert door["points"] == [(T0 + 5, 1), (T0 + 6, 0)]
    battery = series[f"mc_gauge_float_data_value {gateway}.1.battery"]
    assert battery["labels"] == {"__name__": "mc_gauge_float_data_value", **labels("1", "", "battery")}
    assert battery["points"] == [(T0 + 10, 87.0)]
    # text fields: the series, its tags and its timestamps arrive; VictoriaMetrics cannot keep the text itself
    mode = series[f"mc_string_data_value {gateway}.1.5.mode"]
    assert mode["labels"] == {"__name__": "mc_string_data_value", **labels("1", "5", "mode")}
    assert [ts for ts, _value in mode["points"]] == [T0 + 7]
    assert [ts for ts, _ in series[f"mc_geo_data_value {gateway}.1.6.where"]["points"]] == [T0 + 8]


def test_many_batches_arrive_whole_on_flush(victoria_metrics: str, gateway: str) -> None:
    store = store_for(victoria_metrics, batch_size=7, flush_interval_ms=60_000)
    field_id = f"{gateway}.2.1.v"
    try:
        for chunk in range(5):
            store.write([point(field_id, "gauge_float", float(chunk * 10 + i), T0 + chunk * 10 + i)
                         for i in range(10)])
        store.flush()
        store.write([point(field_id, "gauge_float", 99.0, T0 + 99)])  # the writer still works after a flush
        store.flush()

        [only] = export(victoria_metrics, gateway).values()
    finally:
        store.close()

    assert only["points"] == [*((T0 + n, float(n)) for n in range(50)), (T0 + 99, 99.0)]


def test_the_batch_thread_sends_on_its_interval_without_flush(victoria_metrics: str, gateway: str) -> None:
    store = store_for(victoria_metrics, batch_size=1000, flush_interval_ms=50)
    field_id = f"{gateway}.3.1.v"
    try:
        store.write([point(field_id, "gauge_float", 1.5, T0), point(field_id, "gauge_float", 2.5, T0 + 1)])
        wanted = [[(T0, 1.5), (T0 + 1, 2.5)]]
        # no flush and no close: only the batch thread can have sent them (the interval may split them in two)
        deadline = time.monotonic() + 15
        points: list[Any] = []
        while points != wanted and time.monotonic() < deadline:
            time.sleep(0.05)
            points = [entry["points"] for entry in export(victoria_metrics, gateway).values()]
    finally:
        store.close()

    assert points == wanted


def test_close_sends_what_is_batched(victoria_metrics: str, gateway: str) -> None:
    store = store_for(victoria_metrics, batch_size=1000, flush_interval_ms=60_000)
    store.write([point(f"{gateway}.4.1.v", "counter", 5, T0)])
    store.close()

    assert [entry["points"] for entry in export(victoria_metrics, gateway).values()] == [[(T0, 5)]]
