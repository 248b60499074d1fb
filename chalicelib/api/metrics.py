"""Metric endpoints: a field's values over time, raw or aggregated per window.

``GET /api/metric?quickId=field:gw.1.1.V_TEMP&start=-1h&stop=&window=5m&functions=mean,max`` (``quick_id`` as
in the reference is accepted; ``quickId`` may repeat) and ``POST /api/metric`` with the same parameters as JSON
for several quick ids (``quickIds``), or the reference's ``{"global": {...}, "individual": [{"name",
"quickId" or "tags": {"id": fieldId}, ...}]}``. The answer maps each name (the quick id unless named) to its
rows: ``[{"time", "value"}]`` raw, or ``[{"time", "<function>": v}]`` per window. A request whose queries name a
``metricType`` (MyController v2's console always does) is answered as the reference answers it:
``[{"timestamp", "metricType", "metric": {"<function>": v}}]`` (``_reference_metrics``).

Times: ``-1h``/``-30m``/``-7d`` relative to now, ``now``, RFC 3339, or epoch milliseconds. Durations: a number
and a unit among ms, s, m, h, d, w, combinable (``1h30m``). Parsing and function names are ``core.metrics``'s,
as every metric store uses them; text metrics (string, geo) aggregate only with count, first and last.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField
from pydantic.alias_generators import to_camel

from chalicelib.bootstrap import Container
from chalicelib.core.metrics import MetricQueryError, parse_duration, parse_time, validate_functions
from chalicelib.core.model import Kind, MetricType, QuickIdError, iso_from_ms, now_ms, parse_quick_id
from chalicelib.core.ports import MetricQuery
from chalicelib.services.errors import NotFound

from .errors import bad_request
from .web import ApiRequest

DEFAULT_SPAN_MS: Final = 3_600_000
"""Without ``start``, the last hour."""
MAX_QUERIES: Final = 50
MAX_WINDOWS: Final = 10_000
"""Windows one query may ask for (span / window); more is a 400, not a slow answer."""
_MAX_SPAN_MS: Final = 100 * 365 * 86_400_000
_MAX_TIME_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: times past it (or before 1970) are a 400."""


class MetricParams(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, extra="ignore")

    metric_type: str | None = PydField(default=None, description="The reference's form: binary, gauge, "
                                       "gauge_float, counter, string or geo; a request naming it is answered in the "
                                       "reference's shape")

    start: str | int | None = PydField(default=None, description="-1h, now, RFC 3339 or epoch ms (default -1h)")
    stop: str | int | None = PydField(default=None, description="Same forms as start (default now)")
    window: str | None = PydField(default=None, description="Aggregation window, e.g. 5m; none for raw points")
    functions: list[str] | str | None = PydField(
        default=None, description="mean, min, max, median, sum, count, first, last, percentile_NN (default mean)")


class MetricItem(MetricParams):
    name: str | None = PydField(default=None, description="Key of this result (default: the quick id)")
    quick_id: str | None = PydField(default=None, description="Field quick id")
    tags: dict[str, str] = PydField(default_factory=dict, description="The reference's form: {'id': fieldId}")


class MetricRequest(MetricParams):
    quick_ids: list[str] = PydField(default_factory=list, description="Field quick ids")
    quick_id: str | None = PydField(default=None, description="One field quick id")
    global_: MetricParams | None = PydField(default=None, alias="global",
                                            description="Defaults for every individual query (reference)")
    individual: list[MetricItem] = PydField(default_factory=list, description="Queries (reference form)")


# --------------------------------------------------------------------------------------------- parsing


def _duration_ms(text: str, name: str) -> int:
    try:
        value = parse_duration(text)
    except MetricQueryError as error:
        raise bad_request(f"{name}: {error}", name) from None
    if value > _MAX_SPAN_MS:
        raise bad_request(f"{name} {text!r} is too long", name)
    return value


def _time_ms(value: str | int | None, name: str, now: int, default: int) -> int:
    """A point in time (``-1h``, ``now``, RFC 3339, epoch ms) within 1970-9999; 400 naming the parameter."""
    if isinstance(value, str) and value.strip()[:1] in "+-" and value.strip()[1:]:
        _duration_ms(value.strip()[1:], name)  # bound relative times before they overflow anything
    try:
        result = parse_time(value, now, default)
    except MetricQueryError as error:
        raise bad_request(f"{name}: {error}", name) from None
    if not 0 <= result <= _MAX_TIME_MS:
        raise bad_request(f"{name} {value!r} is out of range (1970 to 9999)", name)
    return result


def _merged(*layers: MetricParams | None) -> dict[str, Any]:
    """Parameters from the most specific layer that sets each (first layer wins)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for key in ("start", "stop", "window", "functions"):
            value = getattr(layer, key)
            if key not in merged and value not in (None, "", []):
                merged[key] = value
    return merged


def _query(container: Container, quick_text: str, params: dict[str, Any], now: int) -> list[dict[str, Any]]:
    try:
        quick = parse_quick_id(quick_text)
    except QuickIdError as error:
        raise bad_request(str(error), "quickId") from None
    if quick.kind != Kind.FIELD:
        raise bad_request(f"metrics are kept for fields; {quick_text!r} is a {quick.kind.value}", "quickId")
    field = container.records.find(Kind.FIELD, quick.id, "quickId")
    start = _time_ms(params.get("start"), "start", now, max(0, now - DEFAULT_SPAN_MS))
    stop = _time_ms(params.get("stop"), "stop", now, now)
    if start >= stop:
        raise bad_request(f"start must be before stop ({iso_from_ms(start)} is not before {iso_from_ms(stop)})",
                          "start")
    metric_type = str(field.get("metricType") or MetricType.NONE)
    window_ms = None
    functions: list[str] = []
    if params.get("window") and str(params["window"]).strip().lower() != "none":  # ``none``: raw points
        window_ms = _duration_ms(str(params["window"]), "window")
        if window_ms <= 0:
            raise bad_request("window must be longer than 0", "window")
        if (stop - start) / window_ms > MAX_WINDOWS:
            raise bad_request(f"{(stop - start) // window_ms} windows asked, at most {MAX_WINDOWS}; "
                              "use a longer window or a shorter span", "window")
    raw = params.get("functions")
    if window_ms is not None or raw:  # raw points take no functions, but a bad name is still the caller's error
        try:
            functions = validate_functions([raw] if isinstance(raw, str) else raw, metric_type)
        except MetricQueryError as error:
            raise bad_request(str(error), "functions") from None
    if metric_type == MetricType.NONE:
        return []
    return container.metrics.query(MetricQuery(field_id=str(field["id"]), metric_type=metric_type,
                                              start_ms=start, stop_ms=stop, window_ms=window_ms,
                                              functions=functions))


# --------------------------------------------------------------------------------------------- handlers


def get_metric(request: ApiRequest) -> dict[str, list[dict[str, Any]]]:
    quick_ids = list(dict.fromkeys(request.params("quickId", "quick_id")))
    if not quick_ids:
        raise bad_request("quickId not supplied", "quickId")
    if len(quick_ids) > MAX_QUERIES:
        raise bad_request(f"at most {MAX_QUERIES} quick ids a request", "quickId")
    params: dict[str, Any] = {
        "start": request.param("start"),
        "stop": request.param("stop"),
        "window": request.param("window"),
        "functions": request.params("functions") or None,
    }
    now = now_ms()
    return {quick_id: _query(request.container, quick_id, params, now) for quick_id in quick_ids}


REFERENCE_TYPES: Final = ("binary", "gauge", "gauge_float", "counter", "string", "geo")
REFERENCE_FUNCTIONS: Final = ("mean", "min", "max")
"""The reference's default functions (``global.functions`` empty)."""
_PERCENTILE_NN: Final = re.compile(r"^percentile_(\d+)\Z")


def _reference_functions(*layers: MetricParams | None) -> list[str]:
    """Functions unioned over the layers, lower-cased, ``percentile_NN`` with a bad NN as 99 (the reference's)."""
    functions: list[str] = []
    for layer in layers:
        raw = layer.functions if layer is not None else None
        for item in [raw] if isinstance(raw, str) else raw or []:
            for name in str(item).split(","):
                name = name.strip().lower()
                match = _PERCENTILE_NN.match(name)
                if match and not 1 <= int(match.group(1)) <= 99:
                    name = "percentile_99"
                if name and name not in functions:
                    functions.append(name)
    return functions or list(REFERENCE_FUNCTIONS)


def _reference_target(item: MetricItem) -> str | None:
    """The field a reference query's tags name: ``id``, or ``gatewayId``.``nodeId``.``sourceId``.``fieldId``."""
    if item.quick_id:
        return item.quick_id
    tags = {key.lower(): value for key, value in item.tags.items()}
    if tags.get("id"):
        return f"field:{tags['id']}"
    parts = [tags.get(key) for key in ("gatewayid", "nodeid", "sourceid", "fieldid")]
    return f"field:{'.'.join(str(p) for p in parts)}" if all(parts) else None


def _reference_metrics(request: ApiRequest, body: MetricRequest) -> dict[str, list[dict[str, Any]]] | None:
    """MyController v2's form: each individual query over a copy of ``global`` (its values override, functions
    union), start ``-1h`` and window ``5m`` by default; rows ``{timestamp, metricType, metric: {fn: value}}``.
    gauge, gauge_float and counter are aggregated per window, binary points come raw as ``{value}``; string and
    geo answer no rows, and a field that does not exist an empty list, as the reference's store does."""
    container = request.container
    if container.settings.metrics == "none":
        return None  # the reference answers null when its metrics database is off
    now = now_ms()
    result: dict[str, list[dict[str, Any]]] = {}
    for index, item in enumerate(body.individual):
        metric_type = (item.metric_type or (body.global_.metric_type if body.global_ else None) or "").lower()
        if metric_type not in REFERENCE_TYPES:
            raise bad_request(f"unknown metric type: {metric_type!r}", f"individual[{index}].metricType")
        name = item.name or f"query_{index}"
        target = _reference_target(item)
        if target is None or metric_type in ("string", "geo"):
            result[name] = []
            continue
        params = _merged(item, body.global_)
        params.setdefault("start", "-1h")
        params.setdefault("window", "5m")
        if metric_type == "binary":
            params.update(window="none", functions=None)
        else:
            params["functions"] = _reference_functions(body.global_, item)
        try:
            rows = _query(container, target, params, now)
        except NotFound:
            rows = []
        result[name] = [{"timestamp": row["time"], "metricType": metric_type,
                         "metric": {key: value for key, value in row.items() if key != "time"}} for row in rows]
    return result


def post_metric(request: ApiRequest) -> dict[str, list[dict[str, Any]]] | None:
    body = request.model(MetricRequest)
    if body.individual and (any(item.metric_type for item in body.individual)
                            or (body.global_ is not None and body.global_.metric_type)):
        return _reference_metrics(request, body)
    queries: list[tuple[str, str, dict[str, Any]]] = []
    for quick_id in [*([body.quick_id] if body.quick_id else []), *body.quick_ids]:
        queries.append((quick_id, quick_id, _merged(body, body.global_)))
    for index, item in enumerate(body.individual):
        target = item.quick_id or (f"field:{item.tags['id']}" if item.tags.get("id") else None)
        if not target:
            raise bad_request("each individual query needs quickId (or tags.id)", f"individual[{index}].quickId")
        queries.append((item.name or target, target, _merged(item, body, body.global_)))
    if not queries:
        raise bad_request("supply quickIds (or individual queries)", "quickIds")
    if len(queries) > MAX_QUERIES:
        raise bad_request(f"at most {MAX_QUERIES} queries a request", "quickIds")
    now = now_ms()
    return {name: _query(request.container, quick_id, params, now) for name, quick_id, params in queries}
