"""The stand-in InfluxDB 2 server holds to InfluxDB's documented behaviour, independently of our adapter.

The metric store contract runs the InfluxDB adapter against ``fake_influxdb.FakeInfluxDB``; these tests pin the
server to what InfluxDB's line protocol and Flux references state (escaping, duplicate points, field type
conflicts, half-open ranges, windows truncated by the range, ``exact_mean`` quantiles, refusing what it cannot
evaluate), talking to it through influxdb-client as any client would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from tests.contract.fake_influxdb import FakeInfluxDB, parse_line, points_of

SECOND_NS = 1_000_000_000


@pytest.fixture
def influx(fake_influxdb: FakeInfluxDB) -> Iterator[tuple[FakeInfluxDB, InfluxDBClient, str]]:
    bucket = f"b{len(fake_influxdb.buckets)}"
    fake_influxdb.create_bucket(bucket)
    client = InfluxDBClient(url=fake_influxdb.url, token="t", org="o")
    yield fake_influxdb, client, bucket
    client.close()


def write(client: InfluxDBClient, bucket: str, *lines: str) -> None:
    """Lines with times in seconds."""
    client.write_api(write_options=SYNCHRONOUS).write(bucket=bucket, record="\n".join(lines),
                                                      write_precision=WritePrecision.S)  # type: ignore[arg-type]


def rows(client: InfluxDBClient, flux: str) -> list[dict[str, Any]]:
    """Every record of the answer, as influxdb-client parses InfluxDB's annotated CSV."""
    return [{"result": record.values["result"], "time": time.isoformat() if time is not None else None,
             "value": record.values.get("_value")}
            for table in client.query_api().query(flux) for record in table.records
            for time in [record.values.get("_time")]]  # an aggregate's row has no _time


def test_line_protocol_escapes_follow_the_reference() -> None:
    line = r'my\ meas\,ure,tag\=key=a\,b\ c field\ 1="say \"hi\" \\ \n",n=5i,f=1.5,b=t 1700000000'

    point = parse_line(line, SECOND_NS)

    assert point.measurement == "my meas,ure"
    assert point.tags == (("tag=key", "a,b c"),)
    assert point.fields == {"field 1": 'say "hi" \\ \\n', "n": 5, "f": 1.5, "b": True}  # \n stays two characters
    assert point.time_ns == 1_700_000_000 * SECOND_NS


def test_a_rewritten_point_replaces_and_a_type_conflict_is_refused(influx: Any) -> None:
    server, client, bucket = influx
    write(client, bucket, "m,ID=a value=1.0 10", "m,ID=a value=2.0 10", "m,ID=b value=3.0 10")

    with pytest.raises(ApiException) as refused:
        write(client, bucket, "m,ID=a value=true 11", "m,ID=a value=4.0 12")

    assert refused.value.status == 422
    assert [(key[1], ts // SECOND_NS, value) for key, ts, value in points_of(server, bucket)] == [
        ((("ID", "a"),), 10, 2.0), ((("ID", "a"),), 12, 4.0), ((("ID", "b"),), 10, 3.0)]


def test_unknown_buckets_are_not_found(influx: Any) -> None:
    _server, client, _bucket = influx

    with pytest.raises(ApiException) as write_error:
        write(client, "no-such-bucket", "m value=1.0 1")
    with pytest.raises(ApiException) as query_error:
        rows(client, 'from(bucket: "no-such-bucket") |> range(start: 1970-01-01T00:00:00Z, '
                     'stop: 1970-01-02T00:00:00Z)')

    assert write_error.value.status == query_error.value.status == 404


def test_range_is_half_open_and_filter_selects_series(influx: Any) -> None:
    _server, client, bucket = influx
    write(client, bucket, "m,ID=a value=1.0 10", "m,ID=a value=2.0 20", "m,ID=a value=3.0 30", "m,ID=b value=9.0 20")

    got = rows(client, f'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:10Z, stop: 1970-01-01T00:00:30Z)'
                       ' |> filter(fn: (r) => r._measurement == "m" and r.ID == "a") |> yield(name: "raw")')

    assert got == [{"result": "raw", "time": "1970-01-01T00:00:10+00:00", "value": 1.0},
                   {"result": "raw", "time": "1970-01-01T00:00:20+00:00", "value": 2.0}]


def test_windows_are_truncated_by_the_range_and_empty_ones_kept_on_request(influx: Any) -> None:
    _server, client, bucket = influx
    write(client, bucket, "m value=1.0 65", "m value=2.0 70", "m value=3.0 130", "m value=4.0 250")
    source = f'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:01:05Z, stop: 1970-01-01T00:05:00Z)'

    # windows of 60 s from the epoch; the first, [60 s, 120 s), is cut by the range start at 65 s
    counts = rows(client, f'{source} |> aggregateWindow(every: 60s, fn: count, timeSrc: "_start", '
                          f'createEmpty: false) |> yield(name: "count")')
    filled = rows(client, f'{source} |> aggregateWindow(every: 60s, fn: sum, createEmpty: true)')

    assert counts == [{"result": "count", "time": "1970-01-01T00:01:05+00:00", "value": 2},
                      {"result": "count", "time": "1970-01-01T00:02:00+00:00", "value": 1},
                      {"result": "count", "time": "1970-01-01T00:04:00+00:00", "value": 1}]
    # the default timeSrc is the window's stop; the empty window [180 s, 240 s) stays, with a null
    assert [(row["time"], row["value"]) for row in filled] == [
        ("1970-01-01T00:02:00+00:00", 3.0), ("1970-01-01T00:03:00+00:00", 3.0), ("1970-01-01T00:04:00+00:00", None),
        ("1970-01-01T00:05:00+00:00", 4.0)]


def test_exact_mean_quantiles_interpolate_between_the_closest_ranks(influx: Any) -> None:
    _server, client, bucket = influx
    write(client, bucket, "m value=1.0 1", "m value=1.0 2", "m value=2.0 3", "m value=3.0 4")
    source = f'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:00Z, stop: 1970-01-01T00:01:00Z)'

    # Flux's reference example: 1, 1, 2, 3 at q 0.5 gives 1.5 (rank 0.5 * 3 = 1.5, between 1 and 2)
    assert [r["value"] for r in rows(client, f'{source} |> quantile(q: 0.5, method: "exact_mean")')] == [1.5]
    # q 0.9: rank 2.7, 2 + 0.7 * (3 - 2)
    assert rows(client, f'{source} |> quantile(q: 0.9, method: "exact_mean")')[0]["value"] == pytest.approx(2.7)
    assert [r["value"] for r in rows(client, f'{source} |> median(method: "exact_mean")')] == [1.5]


@pytest.mark.parametrize("flux", [
    'from(bucket: "{bucket}") |> yield()',
    'from(bucket: "{bucket}") |> range(start: -1h)',
    'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:00Z, stop: 1970-01-01T00:01:00Z) |> median()',
    'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:00Z, stop: 1970-01-01T00:01:00Z) |> stddev()',
    'from(bucket: "{bucket}") |> range(start: 1970-01-01T00:00:00Z, stop: 1970-01-01T00:01:00Z) '
    '|> aggregateWindow(every: 1mo, fn: mean)',
], ids=["unbounded", "relative-range", "tdigest", "unknown-function", "calendar-window"])
def test_what_it_cannot_evaluate_faithfully_is_refused(influx: Any, flux: str) -> None:
    _server, client, bucket = influx
    write(client, bucket, "m value=1.0 1")

    with pytest.raises(ApiException) as refused:
        rows(client, flux.format(bucket=bucket))
    assert refused.value.status == 400
