"""Powertools on the API function (``chalicelib.observability``): JSON logs with a correlation id, EMF metrics.

The correlation id is API Gateway's request id (``requestContext.requestId``), set per request by the HTTP
middleware; with Chalice the app object is the Lambda handler, so this takes the place of
``inject_lambda_context(correlation_id_path=API_GATEWAY_REST)``. Logs carry method, route, status and
duration, never bodies or headers (they may hold credentials and device secrets). Metrics are flushed per request
inside Lambda only. Every response carries the correlation id in ``X-Request-Id``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Final

from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Request, Response

from chalicelib.observability import IN_LAMBDA, SERVICE, Logger, metrics, tracer

from .errors import JSON_HEADERS, error_body, normalize_error_body

__all__ = ["IN_LAMBDA", "http_middleware", "logger", "tracer"]

REQUEST_ID_HEADER: Final = "X-Request-Id"

logger = Logger(service=SERVICE, child=True)


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
