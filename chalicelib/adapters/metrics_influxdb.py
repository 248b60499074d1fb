"""The InfluxDB 2 metric store (Timestream for InfluxDB in AWS), in the reference's layout.

Layout, so that dashboards and data written by MyController v2 keep working:

* measurements ``<prefix>_binary_data``, ``_gauge_int_data`` (metric type gauge), ``_gauge_float_data``,
  ``_counter_data``, ``_string_data``, ``_geo_data``; type ``none`` is not written;
* tags ``ID`` (the field id ``gw.node.src.field``), ``GatewayID``, ``NodeID``, ``SourceID``, ``FieldID``
  (an empty tag is left out, as line protocol requires);
* one field ``value``: bool for binary, float for gauge and counter (a float field never hits InfluxDB's
  field-type conflict when a device sends 21 then 21.5; reads convert with ``toFloat()``, so integer fields
  written by the reference read back too), string for string and geo;
* time in milliseconds.

Writes go through influxdb-client's batching write API (a background thread sends ``batch_size`` points or
every ``flush_interval_ms``, with retries); the lines are built here rather than as ``Point`` objects because
``write`` is on the ingest hot path. ``flush``/``close`` wait until the batch is sent.

Reads are Flux: ``build_flux`` writes the query text, ``rows_from_tables`` turns the answer into the port's rows;
both are pure so that tests need no Flux server.

Credentials: a token (``Authorization: Token``), or a user's name and password (what Timestream for InfluxDB keeps
in the secret of an instance it creates): influxdb-client then signs in for a session cookie, which InfluxDB
expires (60 minutes by default) and the client never renews, so the store drops it every
``SESSION_RENEW_S`` and the next call signs in again. ``influxdb_credentials`` reads either from a secret's text.
"""

from __future__ import annotations

import calendar
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

from chalicelib.core.metrics import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    MetricQueryError,
    Row,
    percentile_of,
    stored_number,
    typed_value,
    validate_functions,
    window_start,
)
from chalicelib.core.model import iso_from_ms
from chalicelib.core.ports import MetricPoint, MetricQuery

logger = logging.getLogger(__name__)

MEASUREMENTS: Final = {
    "binary": "binary_data",
    "gauge": "gauge_int_data",
    "gauge_float": "gauge_float_data",
    "counter": "counter_data",
    "string": "string_data",
    "geo": "geo_data",
}
VALUE_FIELD: Final = "value"
RAW_RESULT: Final = "raw"
_TAG_CACHE_LIMIT: Final = 100_000
_MEASUREMENT_ESCAPES: Final = str.maketrans({",": "\\,", " ": "\\ ", "\\": "\\\\"})
_TAG_ESCAPES: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ ", "\\": "\\\\"})
_STRING_ESCAPES: Final = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})


def measurement_name(prefix: str, metric_type: str) -> str | None:
    """``mc_gauge_float_data`` for gauge_float; None for types that are not written (none)."""
    suffix = MEASUREMENTS.get(metric_type)
    return f"{prefix}_{suffix}" if suffix else None


# --------------------------------------------------------------------------------------------- writes


def series_key(prefix: str, point: MetricPoint) -> str | None:
    """Measurement and tags of a point's line (``mc_gauge_float_data,FieldID=t,GatewayID=gw,ID=…``)."""
    measurement = measurement_name(prefix, point.metric_type)
    if measurement is None:
        return None
    tags = (("FieldID", point.field_key), ("GatewayID", point.gateway_id), ("ID", point.field_id),
            ("NodeID", point.node_id), ("SourceID", point.source_id))  # sorted by key, as InfluxDB prefers
    text = ",".join(f"{key}={value.translate(_TAG_ESCAPES)}" for key, value in tags if value)
    return f"{measurement.translate(_MEASUREMENT_ESCAPES)},{text}"


def field_text(value: Any, metric_type: str) -> str | None:
    """The line protocol ``value=…`` field for a converted value; None when it cannot be written."""
    if value is None:
        return None
    if metric_type == "binary":
        number = stored_number(value, metric_type)
        if number is None:  # not a binary value ("maybe"): skipped as the embedded store skips it, never a 0
            return None
        return "value=true" if number else "value=false"
    if metric_type in NUMERIC_TYPES:
        number = stored_number(value, metric_type)
        return None if number is None else f"value={number!r}"
    if metric_type in TEXT_TYPES:
        text = value if isinstance(value, str) else str(value)
        return f'value="{text.translate(_STRING_ESCAPES)}"'
    return None


def line_protocol(prefix: str, point: MetricPoint) -> str | None:
    """One point as an InfluxDB line (timestamp in ms); None for metric type none or a missing value."""
    field = field_text(point.value, point.metric_type)
    if field is None:
        return None
    key = series_key(prefix, point)
    return None if key is None else f"{key} {field} {int(point.timestamp_ms)}"


# --------------------------------------------------------------------------------------------- Flux


def flux_string(text: str) -> str:
    """A Flux string literal (escapes quotes, backslashes and ``${`` interpolation)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def _flux_fn(function: str) -> str:
    """The ``fn`` of ``aggregateWindow`` for one of our function names."""
    if function == "median":
        return '(column, tables=<-) => tables |> median(column: column, method: "exact_mean")'
    q = percentile_of(function)
    if q is not None:
        return f'(column, tables=<-) => tables |> quantile(column: column, q: {q / 100:g}, method: "exact_mean")'
    return function


def build_flux(query: MetricQuery, bucket: str, prefix: str = "mc") -> str:
    """The Flux for a query: raw points (one ``raw`` result), or one ``aggregateWindow`` result per function,
    each yielded under the function's name. Windows are epoch-aligned and labelled by their start."""
    measurement = measurement_name(prefix, query.metric_type)
    if measurement is None:
        raise MetricQueryError(f"metric type {query.metric_type!r} keeps no metrics")
    if query.start_ms >= query.stop_ms:
        raise MetricQueryError(f"time range is empty: start {iso_from_ms(query.start_ms)} is not before stop "
                               f"{iso_from_ms(query.stop_ms)}")
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {iso_from_ms(query.start_ms)}, stop: {iso_from_ms(query.stop_ms)})",
        f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)} and r._field == "
        f"{flux_string(VALUE_FIELD)} and r.ID == {flux_string(query.field_id)})",
    ]
    if query.metric_type in NUMERIC_TYPES:
        lines.append("  |> toFloat()")
    lines.append("  |> group()")
    if query.window_ms is None:
        return "\n".join([*lines, '  |> sort(columns: ["_time"])', f"  |> yield(name: {flux_string(RAW_RESULT)})"])
    if query.window_ms <= 0:
        raise MetricQueryError(f"window must be longer than 0 ms, got {query.window_ms}")
    functions = validate_functions(query.functions, query.metric_type)
    text = ["data = " + lines[0].strip(), *lines[1:], ""]
    for function in functions:
        text += [
            "data",
            f"  |> aggregateWindow(every: {query.window_ms}ms, fn: {_flux_fn(function)}, timeSrc: \"_start\", "
            "createEmpty: false)",
            f"  |> yield(name: {flux_string(function)})",
            "",
        ]
    return "\n".join(text).rstrip() + "\n"


def _ms(moment: datetime) -> int:
    """Epoch ms of an aware datetime without float rounding."""
    return calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000


def _result_value(function: str, value: Any, metric_type: str) -> Any:
    if value is None:
        return None
    if function == "count":
        return int(value)
    if function == "mean" or percentile_of(function) is not None:
        return float(value)
    return typed_value(value, metric_type)


def rows_from_tables(tables: Iterable[Any], functions: Sequence[str] | None, *, metric_type: str = "gauge_float",
                     window_ms: int | None = None) -> list[Row]:
    """Rows from Flux tables (``FluxTable``s of ``build_flux``'s query), ordered by time.

    ``functions`` None means raw points. Aggregates are matched to functions by the result (yield) name; a
    single function also takes an unnamed ``_result``. Window times are floored to ``window_ms`` because Flux
    labels a window cut by the range start with the range start.
    """
    if functions is None:
        points: list[tuple[int, Any]] = []
        for table in tables:
            for record in table.records:
                value = record.values.get("_value")
                if value is not None:
                    points.append((_ms(record.values["_time"]), value))
        points.sort(key=lambda point: point[0])
        return [{"time": iso_from_ms(ts), "value": typed_value(value, metric_type)} for ts, value in points]
    wanted = list(functions)
    by_window: dict[int, Row] = {}
    for table in tables:
        for record in table.records:
            result = record.values.get("result")
            function = result if result in wanted else wanted[0] if len(wanted) == 1 else None
            value = record.values.get("_value")
            if function is None or value is None:
                continue
            ts = _ms(record.values["_time"])
            if window_ms:
                ts = window_start(ts, window_ms)
            by_window.setdefault(ts, {})[function] = _result_value(function, value, metric_type)
    return [{"time": iso_from_ms(ts), **{f: row[f] for f in wanted if f in row}}
            for ts, row in sorted(by_window.items())]


# --------------------------------------------------------------------------------------------- credentials

SESSION_RENEW_S: Final = 30 * 60
"""Half InfluxDB's default session length: a session cookie older than this is dropped before the next call."""


class InfluxCredentials(NamedTuple):
    """A token, or a user's name and password (session sign-in)."""

    token: str | None = None
    username: str | None = None
    password: str | None = None


def influxdb_credentials(text: str) -> InfluxCredentials:
    """The credentials a secret holds: the token as plain text, JSON with ``token`` (a token secret), or JSON with
    ``username`` and ``password`` (an instance's admin secret); ``ValueError`` naming what is missing."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        if not stripped:
            raise ValueError("the InfluxDB secret is empty")
        return InfluxCredentials(token=stripped)
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        raise ValueError("the InfluxDB secret is neither a token nor a JSON object") from None
    token = data.get("token") if isinstance(data, dict) else None
    if isinstance(token, str) and token:
        return InfluxCredentials(token=token)
    username, password = (data.get("username"), data.get("password")) if isinstance(data, dict) else (None, None)
    if isinstance(username, str) and username and isinstance(password, str) and password:
        return InfluxCredentials(username=username, password=password)
    raise ValueError("the InfluxDB secret's JSON needs 'token', or 'username' and 'password'")


# --------------------------------------------------------------------------------------------- adapter


class InfluxDBMetricStore:
    """``MetricStore`` on InfluxDB 2 (or anything speaking its ``/api/v2/write``, such as VictoriaMetrics)."""

    def __init__(self, url: str, token: str | None, org: str, bucket: str, measurement_prefix: str = "mc",
                 batch_size: int = 1000, flush_interval_ms: int = 1000, *, timeout_ms: int = 10_000,
                 username: str | None = None, password: str | None = None) -> None:
        from influxdb_client import InfluxDBClient

        self.url = url
        self.org = org
        self.bucket = bucket
        self.prefix = measurement_prefix
        self.batch_size = max(1, int(batch_size))
        self.flush_interval_ms = max(1, int(flush_interval_ms))
        self._session = not token and bool(username and password)
        """Signed in with a user's name and password: the session cookie is renewed (``SESSION_RENEW_S``)."""
        self._session_started = time.monotonic()
        if self._session:
            self._client = InfluxDBClient(url=url, token="", org=org, timeout=timeout_ms, username=username,
                                          password=password)
        else:
            self._client = InfluxDBClient(url=url, token=token or "", org=org, timeout=timeout_ms)
        self._query_api = self._client.query_api()
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, str, str, str, str], str | None] = {}
        self._write_api: Any = self._new_write_api()
        self._closed = False

    def _new_write_api(self) -> Any:
        from influxdb_client import WriteOptions

        options = WriteOptions(batch_size=self.batch_size, flush_interval=self.flush_interval_ms, jitter_interval=0,
                               retry_interval=1000, max_retries=5, max_retry_delay=30_000, exponential_base=2)
        return self._client.write_api(write_options=options, error_callback=self._failed)

    def _renew_session(self) -> None:
        """Drop a session cookie before InfluxDB expires it: the client signs in again on its next call (the write
        thread's too, as it shares the client)."""
        if self._session and time.monotonic() - self._session_started > SESSION_RENEW_S:
            self._session_started = time.monotonic()
            self._client.api_client.cookie = None

    @staticmethod
    def _failed(conf: tuple[str, str, str], data: Any, error: Exception) -> None:
        """The batch thread gave up on a batch (after retries): log it, as a DLQ cannot take it back."""
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
        size = text.count("\n") + 1 if text else 0
        logger.error("metrics: InfluxDB write of %d point(s) to bucket %s failed: %s", size, conf[0], error)

    def write(self, points: Sequence[MetricPoint]) -> None:
        """Hand points to the batching writer (returns at once; the background thread sends them)."""
        keys = self._keys
        prefix = self.prefix
        lines: list[str] = []
        for point in points:
            field = field_text(point.value, point.metric_type)
            if field is None:
                continue
            ident = (point.field_id, point.gateway_id, point.node_id, point.source_id, point.field_key,
                     point.metric_type)
            key = keys.get(ident, "")
            if key == "":
                if len(keys) >= _TAG_CACHE_LIMIT:
                    keys.clear()
                key = keys[ident] = series_key(prefix, point)
            if key is not None:
                lines.append(f"{key} {field} {int(point.timestamp_ms)}")
        if not lines:
            return
        from influxdb_client import WritePrecision

        self._renew_session()
        with self._lock:
            if self._closed:
                raise RuntimeError("metric store is closed")
            self._write_api.write(bucket=self.bucket, org=self.org, record=lines, write_precision=WritePrecision.MS)

    def flush(self) -> None:
        """Send what is batched and wait for it: influxdb-client's batching ``flush`` is a no-op, so the
        writer is closed (which drains it) and replaced."""
        with self._lock:
            if self._closed:
                return
            old, self._write_api = self._write_api, self._new_write_api()
        old.close()

    def query(self, query: MetricQuery) -> list[Row]:
        """Raw points or per-window aggregates through the Flux query API."""
        if measurement_name(self.prefix, query.metric_type) is None or query.start_ms >= query.stop_ms:
            return []
        functions = None
        if query.window_ms is not None:
            functions = validate_functions(query.functions, query.metric_type)
        flux = build_flux(query, self.bucket, self.prefix)
        self._renew_session()
        tables = self._query_api.query(flux, org=self.org)
        return rows_from_tables(tables, functions, metric_type=query.metric_type, window_ms=query.window_ms)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer = self._write_api
        try:
            writer.close()
        finally:
            self._client.close()
