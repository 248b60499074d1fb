"""The InfluxDB adapter without a server: line protocol, Flux text, and rows from Flux's annotated CSV.

Rows are parsed by influxdb-client's own ``FluxCsvParser`` from CSV shaped as InfluxDB answers
``build_flux``'s queries (one result per yield, named after the function).
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from influxdb_client.client.flux_csv_parser import FluxCsvParser, FluxSerializationMode
from influxdb_client.client.flux_table import TableList

from chalicelib.adapters.metrics_influxdb import (
    InfluxDBMetricStore,
    build_flux,
    flux_string,
    line_protocol,
    measurement_name,
    rows_from_tables,
)
from chalicelib.core.metrics import MetricQueryError
from chalicelib.core.ports import MetricPoint, MetricQuery
from tests.contract.metric_fixtures import MINUTE, T0, at, point, raw, windowed

TEMP = "gw1.1.1.temp"


def parse(csv: str) -> TableList:
    """Tables as ``query_api().query`` returns them, from an annotated CSV body."""
    parser = FluxCsvParser(response=BytesIO(csv.encode()), serialization_mode=FluxSerializationMode.tables)
    list(parser.generator())
    return parser.tables


def result_csv(name: str, datatype: str, rows: list[tuple[str, str]], start: str = "2024-01-01T00:00:00Z",
               stop: str = "2024-01-01T01:00:00Z") -> str:
    """One yield's block of annotated CSV: ``rows`` are (``_time``, ``_value``)."""
    lines = [
        "#group,false,false,true,true,false,false,false,false,false",
        f"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,{datatype},string,string,string",
        f"#default,{name},,,,,,,,",
        ",result,table,_start,_stop,_time,_value,_field,_measurement,ID",
        *[f",,0,{start},{stop},{time},{value},value,mc_gauge_float_data,{TEMP}" for time, value in rows],
        "",
    ]
    return "\r\n".join(lines) + "\r\n"


# --------------------------------------------------------------------------------------------- line protocol


def test_measurements_follow_the_reference_names() -> None:
    assert {t: measurement_name("mc", t) for t in ("binary", "gauge", "gauge_float", "counter", "string", "geo",
                                                    "none")} == {
        "binary": "mc_binary_data", "gauge": "mc_gauge_int_data", "gauge_float": "mc_gauge_float_data",
        "counter": "mc_counter_data", "string": "mc_string_data", "geo": "mc_geo_data", "none": None}
    assert measurement_name("home", "gauge") == "home_gauge_int_data"


def test_line_protocol_per_metric_type() -> None:
    tags = "FieldID=f,GatewayID=gw1,ID=gw1.2.3.f,NodeID=2,SourceID=3"
    lines = [line_protocol("mc", MetricPoint("gw1.2.3.f", "gw1", "2", "3", "f", metric_type, value, T0 + 5))
             for metric_type, value in (("gauge_float", 21.5), ("gauge", 21), ("counter", 7), ("binary", True),
                                        ("binary", False), ("string", "on"), ("geo", "52.52;13.405"))]

    assert lines == [
        f"mc_gauge_float_data,{tags} value=21.5 1704067200005",
        f"mc_gauge_int_data,{tags} value=21.0 1704067200005",
        f"mc_counter_data,{tags} value=7.0 1704067200005",
        f"mc_binary_data,{tags} value=true 1704067200005",
        f"mc_binary_data,{tags} value=false 1704067200005",
        f'mc_string_data,{tags} value="on" 1704067200005',
        f'mc_geo_data,{tags} value="52.52;13.405" 1704067200005',
    ]


def test_line_protocol_escapes_and_leaves_out_empty_tags() -> None:
    node_metric = MetricPoint("gw 1.n=1.,x.battery", "gw 1", "n=1", "", "battery", "string", 'a "quoted" \\ text\n',
                              T0)

    assert line_protocol("my prefix", node_metric) == (
        "my\\ prefix_string_data,FieldID=battery,GatewayID=gw\\ 1,ID=gw\\ 1.n\\=1.\\,x.battery,NodeID=n\\=1 "
        'value="a \\"quoted\\" \\\\ text\\n" 1704067200000')


def test_nothing_is_written_for_type_none_or_missing_values() -> None:
    assert line_protocol("mc", point(TEMP, "none", "x", T0)) is None
    assert line_protocol("mc", point(TEMP, "gauge_float", None, T0)) is None
    assert line_protocol("mc", point(TEMP, "gauge_float", "not a number", T0)) is None


# --------------------------------------------------------------------------------------------- Flux text


def test_raw_query_flux() -> None:
    flux = build_flux(raw(TEMP, "gauge_float", T0, T0 + 60 * MINUTE), "metrics", "mc")

    assert flux == (
        'from(bucket: "metrics")\n'
        "  |> range(start: 2024-01-01T00:00:00.000Z, stop: 2024-01-01T01:00:00.000Z)\n"
        '  |> filter(fn: (r) => r._measurement == "mc_gauge_float_data" and r._field == "value" and '
        'r.ID == "gw1.1.1.temp")\n'
        "  |> toFloat()\n"
        "  |> group()\n"
        '  |> sort(columns: ["_time"])\n'
        '  |> yield(name: "raw")'
    )


def test_text_metrics_are_not_converted_to_float() -> None:
    flux = build_flux(raw("gw1.1.1.mode", "string", T0, T0 + 1), "metrics", "mc")

    assert 'r._measurement == "mc_string_data"' in flux
    assert "toFloat" not in flux


@pytest.mark.parametrize(("function", "fn"), [
    ("mean", "mean"),
    ("min", "min"),
    ("max", "max"),
    ("sum", "sum"),
    ("count", "count"),
    ("first", "first"),
    ("last", "last"),
    ("median", '(column, tables=<-) => tables |> median(column: column, method: "exact_mean")'),
    ("percentile_90", '(column, tables=<-) => tables |> quantile(column: column, q: 0.9, method: "exact_mean")'),
    ("percentile_5", '(column, tables=<-) => tables |> quantile(column: column, q: 0.05, method: "exact_mean")'),
    ("percentile_99", '(column, tables=<-) => tables |> quantile(column: column, q: 0.99, method: "exact_mean")'),
])
def test_each_function_is_one_aggregate_window(function: str, fn: str) -> None:
    flux = build_flux(windowed(TEMP, "gauge_float", T0, T0 + 60 * MINUTE, 5 * MINUTE, function), "metrics", "mc")

    assert flux == (
        'data = from(bucket: "metrics")\n'
        "  |> range(start: 2024-01-01T00:00:00.000Z, stop: 2024-01-01T01:00:00.000Z)\n"
        '  |> filter(fn: (r) => r._measurement == "mc_gauge_float_data" and r._field == "value" and '
        'r.ID == "gw1.1.1.temp")\n'
        "  |> toFloat()\n"
        "  |> group()\n"
        "\n"
        "data\n"
        f'  |> aggregateWindow(every: 300000ms, fn: {fn}, timeSrc: "_start", createEmpty: false)\n'
        f'  |> yield(name: "{function}")\n'
    )


def test_several_functions_are_several_named_yields_in_order() -> None:
    flux = build_flux(windowed(TEMP, "binary", T0, T0 + MINUTE, 1500, "max", "Mean", "percentile_90", "max"),
                      "b", "home")

    assert 'r._measurement == "home_binary_data"' in flux
    assert "|> toFloat()" in flux, "binary is stored as bool; aggregates need numbers"
    assert flux.count("aggregateWindow(every: 1500ms,") == 3
    yields = [line.strip() for line in flux.splitlines() if "yield" in line]
    assert yields == ['|> yield(name: "max")', '|> yield(name: "mean")', '|> yield(name: "percentile_90")']


def test_flux_strings_are_escaped() -> None:
    assert flux_string('a"b\\c${x}') == '"a\\"b\\\\c\\${x}"'
    flux = build_flux(raw('gw.1.1."x"', "gauge", T0, T0 + 1), 'my "bucket"', "mc")
    assert 'from(bucket: "my \\"bucket\\"")' in flux
    assert 'r.ID == "gw.1.1.\\"x\\""' in flux


@pytest.mark.parametrize(("query", "message"), [
    (windowed("gw.1.1.s", "string", T0, T0 + MINUTE, MINUTE, "mean"), "mean"),
    (windowed(TEMP, "gauge_float", T0, T0 + MINUTE, MINUTE, "percentile_100"), "percentile_100"),
    (windowed(TEMP, "gauge_float", T0, T0 + MINUTE, 0, "mean"), "window"),
    (raw(TEMP, "none", T0, T0 + MINUTE), "none"),
    (raw(TEMP, "gauge_float", T0 + MINUTE, T0 + MINUTE), "empty"),
])
def test_queries_that_cannot_be_asked_are_errors(query: MetricQuery, message: str) -> None:
    with pytest.raises(MetricQueryError, match=message):
        build_flux(query, "metrics", "mc")


# --------------------------------------------------------------------------------------------- rows from tables


def test_raw_rows_are_typed_and_time_ordered() -> None:
    tables = parse(result_csv("raw", "double", [("2024-01-01T00:00:01.5Z", "3"),
                                                 ("2024-01-01T00:00:00.123Z", "21.5")]))

    assert rows_from_tables(tables, None, metric_type="gauge") == [
        {"time": "2024-01-01T00:00:00.123Z", "value": 21.5}, {"time": "2024-01-01T00:00:01.500Z", "value": 3}]
    assert [type(row["value"]) for row in rows_from_tables(tables, None, metric_type="gauge")] == [float, int]
    assert rows_from_tables(tables, None, metric_type="binary")[1]["value"] == 3


def test_text_rows() -> None:
    tables = parse(result_csv("raw", "string", [("2024-01-01T00:00:00Z", "heat"), ("2024-01-01T00:00:02Z", "off")]))

    assert rows_from_tables(tables, None, metric_type="string") == [
        {"time": at(T0), "value": "heat"}, {"time": at(T0 + 2000), "value": "off"}]


def test_aggregate_results_merge_per_window_and_windows_are_aligned() -> None:
    # the range starts at 00:00:15: Flux labels the first (cut) window with the range start
    start = "2024-01-01T00:00:15Z"
    csv = (result_csv("mean", "double", [(start, "35"), ("2024-01-01T00:01:00Z", "6")], start=start)
           + "\r\n" + result_csv("count", "long", [(start, "2"), ("2024-01-01T00:01:00Z", "2")], start=start)
           + "\r\n" + result_csv("percentile_90", "double", [(start, "39"), ("2024-01-01T00:01:00Z", "7")],
                                 start=start)
           + "\r\n" + result_csv("max", "double", [(start, "40"), ("2024-01-01T00:01:00Z", "7")], start=start))
    tables = parse(csv)

    rows = rows_from_tables(tables, ["max", "mean", "count", "percentile_90"], metric_type="gauge",
                            window_ms=MINUTE)

    assert rows == [{"time": at(T0), "max": 40, "mean": 35.0, "count": 2, "percentile_90": 39.0},
                    {"time": at(T0 + MINUTE), "max": 7, "mean": 6.0, "count": 2, "percentile_90": 7.0}]
    assert [type(v) for v in rows[0].values()] == [str, int, float, int, float]


def test_a_single_unnamed_result_belongs_to_the_only_function() -> None:
    tables = parse(result_csv("_result", "double", [("2024-01-01T00:05:00Z", "1.5")]))

    assert rows_from_tables(tables, ["sum"], metric_type="gauge_float", window_ms=5 * MINUTE) == [
        {"time": at(T0 + 5 * MINUTE), "sum": 1.5}]
    assert rows_from_tables(tables, ["sum", "mean"], metric_type="gauge_float") == []


def test_no_tables_no_rows() -> None:
    assert rows_from_tables(parse(""), ["mean"], window_ms=MINUTE) == []
    assert rows_from_tables([], None) == []


# --------------------------------------------------------------------------------------------- the adapter


class FakeQueryApi:
    """Answers like ``QueryApi.query`` and remembers the Flux asked."""

    def __init__(self, csv: str) -> None:
        self.csv = csv
        self.asked: list[tuple[str, str | None]] = []

    def query(self, query: str, org: str | None = None, **_: Any) -> TableList:
        self.asked.append((query, org))
        return parse(self.csv)


@pytest.fixture
def influx() -> Iterator[InfluxDBMetricStore]:
    """An adapter whose client never connects (nothing is written; queries are faked)."""
    store = InfluxDBMetricStore("http://127.0.0.1:9", "token", "my-org", "metrics", measurement_prefix="mc")
    yield store
    store.close()


def test_adapter_queries_through_flux_and_types_rows(influx: InfluxDBMetricStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQueryApi(result_csv("mean", "double", [("2024-01-01T00:00:00Z", "25")])
                        + "\r\n" + result_csv("last", "double", [("2024-01-01T00:00:00Z", "40")]))
    monkeypatch.setattr(influx, "_query_api", fake)

    rows = influx.query(windowed(TEMP, "counter", T0, T0 + MINUTE, MINUTE, "mean", "last"))

    assert rows == [{"time": at(T0), "mean": 25.0, "last": 40}]
    [(flux, org)] = fake.asked
    assert org == "my-org"
    assert flux == build_flux(windowed(TEMP, "counter", T0, T0 + MINUTE, MINUTE, "mean", "last"), "metrics", "mc")


def test_adapter_answers_without_asking_when_there_is_nothing_to_ask(influx: InfluxDBMetricStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQueryApi("")
    monkeypatch.setattr(influx, "_query_api", fake)

    assert influx.query(raw(TEMP, "none", T0, T0 + MINUTE)) == []
    assert influx.query(raw(TEMP, "gauge", T0 + MINUTE, T0)) == []
    with pytest.raises(MetricQueryError, match="mean"):
        influx.query(windowed(TEMP, "geo", T0, T0 + MINUTE, MINUTE, "mean"))
    assert fake.asked == []


def test_adapter_refuses_writes_after_close() -> None:
    store = InfluxDBMetricStore("http://127.0.0.1:9", "token", "org", "metrics")
    store.write([point(TEMP, "none", "x", T0)])  # nothing to send: no error
    store.close()
    store.close()

    with pytest.raises(RuntimeError, match="closed"):
        store.write([point(TEMP, "gauge_float", 1.0, T0)])
