"""Powertools for every function: one logger, metrics and a tracer, named by the environment.

Each Lambda function's environment names its service (``POWERTOOLS_SERVICE_NAME``, set per function by the
template); the local stack calls itself ``mycontroller-local`` and anything else (tests, tools) ``mycontroller``.
Modules log through Powertools child loggers of the one logger built here (``Logger(service=SERVICE, child=True)``,
both imported from this module, so that the parent exists first and a child never names another service than its
parent, even if the environment changed since): every line is JSON with the function's service, the module's name
and the correlation id its entry set. Metrics (namespace ``MyController``) are emitted and flushed inside Lambda
only, at most once a minute (``MinuteMetrics``); outside it there is no X-Ray daemon, so no Tracer is even
built (the X-Ray SDK costs ~0.8 s to load).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer

__all__ = ["IN_LAMBDA", "NAMESPACE", "SERVICE", "Logger", "logger", "metrics", "tracer"]

DEFAULT_SERVICE: Final = "mycontroller"
NAMESPACE: Final = "MyController"
IN_LAMBDA: Final = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not os.environ.get("AWS_CHALICE_CLI_MODE")
"""Running as a deployed function (``chalice package`` imports the app with this set too, but in CLI mode)."""

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", DEFAULT_SERVICE)
if not IN_LAMBDA:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
SERVICE: Final = os.environ["POWERTOOLS_SERVICE_NAME"]


class TracerLike(Protocol):
    """What the functions use of Powertools' ``Tracer``."""

    @property
    def capture_method(self) -> Callable[..., Any]: ...

    @property
    def put_annotation(self) -> Callable[..., None]: ...


class NoTracer:
    """Outside Lambda: the decorators leave the function as it is."""

    def capture_method(self, method: Any = None, capture_response: bool | None = None,
                       capture_error: bool | None = None) -> Any:
        return method if method is not None else (lambda function: function)

    def put_annotation(self, key: str, value: str | float | bool) -> None:
        return None


METRICS_FLUSH_S: Final = 60.0
"""A function's metrics go out at most once a minute (and at 100 values of one metric, as Powertools does)."""


class MinuteMetrics(Metrics):
    """Powertools metrics written (an embedded-metric-format log line) at most once a minute: at a home's pace the
    ingest function runs every second or two, and a line per invocation was most of its log bytes
    (``docs/cost.md``). The values of the minute travel together; what a container held when Lambda retired it
    (under a minute's worth) is not written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flushed_at = float("-inf")

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        now = time.monotonic()
        if now - self.flushed_at < METRICS_FLUSH_S:
            return
        self.flushed_at = now
        super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


logger = Logger(level=(os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper())
"""The parent of every module's child logger."""
metrics = MinuteMetrics(namespace=NAMESPACE)
tracer: TracerLike = Tracer() if IN_LAMBDA else NoTracer()
