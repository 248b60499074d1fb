"""Powertools on the API function: JSON logs with a correlation id, EMF metrics, X-Ray tracing.

The correlation id is API Gateway's request id (``requestContext.requestId``), set per request by the HTTP
middleware; with Chalice the app object is the Lambda handler, so this takes the place of
``inject_lambda_context(correlation_id_path=API_GATEWAY_REST)``. Logs carry method, route, status and
duration, never bodies or headers (they may hold credentials and device secrets). Metrics (namespace
``MyController``) are flushed per request inside Lambda only; tracing is off outside Lambda
(``POWERTOOLS_TRACE_DISABLED``, and no Tracer is even built). Every response
carries the correlation id in ``X-Request-Id``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Request, Response

from .errors import JSON_HEADERS, error_body, normalize_error_body

SERVICE: Final = "mycontroller-api"
REQUEST_ID_HEADER: Final = "X-Request-Id"
IN_LAMBDA: Final = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not os.environ.get("AWS_CHALICE_CLI_MODE")

if not IN_LAMBDA:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")



class TracerLike(Protocol):
    """What the API uses of Powertools' ``Tracer``."""

    @property
    def capture_method(self) -> Callable[..., Any]: ...

    @property
    def put_annotation(self) -> Callable[..., None]: ...


class NoTracer:
    """Outside Lambda there is no X-Ray daemon: skip building a Tracer (the X-Ray SDK costs ~0.8 s to load)."""

    def capture_method(self, method: Any = None, capture_response: bool | None = None,
                       capture_error: bool | None = None) -> Any:
        return method if method is not None else (lambda function: function)

    def put_annotation(self, key: str, value: str | float | bool) -> None:
        return None


logger = Logger(service=SERVICE, level=(os.environ.get("LOG_LEVEL") or "INFO").upper())
metrics = Metrics(namespace="MyController", service=SERVICE)
tracer: TracerLike = Tracer(service=SERVICE) if IN_LAMBDA else NoTracer()


def correlation_id_of(request: Request) -> str:
    """API Gateway's request id; locally the caller's ``X-Request-Id`` or a fresh one."""
    request_id = (request.context or {}).get("requestId")
    if request_id:
        return str(request_id)
    given = request.headers.get(REQUEST_ID_HEADER) if request.headers else None
    if given and len(given) <= 128 and given.isprintable():
        return given
    return uuid.uuid4().hex


def _normalized(response: Response) -> Response:
    body = normalize_error_body(response.status_code, response.body)
    if body is None:
        return response
    headers: dict[str, str | list[str]] = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
    headers.update(JSON_HEADERS)
    return Response(body=body, status_code=response.status_code, headers=headers)


def http_middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Correlation id, one log line and metrics per request; Chalice's own error bodies in our shape."""
    started = time.perf_counter()
    context = request.context or {}
    correlation_id = correlation_id_of(request)
    logger.set_correlation_id(correlation_id)
    route = str(context.get("resourcePath") or request.path)
    try:
        response = _normalized(get_response(request))
    except Exception:
        logger.exception("request failed", extra={"method": request.method, "route": route})
        response = Response(body=error_body(500, "internal server error"), status_code=500,
                            headers={**JSON_HEADERS})
    response.headers[REQUEST_ID_HEADER] = correlation_id
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info("request", extra={"method": request.method, "route": route, "status": response.status_code,
                                  "duration_ms": round(elapsed_ms, 2)})
    if IN_LAMBDA:
        metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="ApiLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
        if response.status_code >= 500:
            metrics.add_metric(name="ApiServerErrors", unit=MetricUnit.Count, value=1)
        elif response.status_code >= 400:
            metrics.add_metric(name="ApiClientErrors", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
    return response
