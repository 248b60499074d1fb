"""``WebhookResolver`` over urllib: the HTTP calls of tasks' ``webhook`` variables and evaluations.

Standard library only (no extra dependency in the Lambda bundle). Every call has the task's timeout (``10s`` by
default, at most ``MAX_TIMEOUT_S``) and reads at most ``MAX_BODY_BYTES``; a status other than the expected one,
or a transport error raises, which fails that one evaluation with a message naming the variable; a body that is
not JSON comes back as text. ``insecure`` skips TLS verification, as the reference allows for self-signed devices.
Every connection, redirects' too, goes through the outbound policy (``core/outbound.py``): a refused address fails
the evaluation with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ..core.automation.clock import parse_duration
from ..core.automation.models import WebhookCall
from . import http_call
from .errors import AdapterError
from .outbound import PolicyOf, default_policy

MAX_TIMEOUT_S: Final = 30.0
MAX_BODY_BYTES: Final = 1024 * 1024
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class WebhookError(AdapterError, RuntimeError):
    """A webhook call that did not answer as expected; the message says how (never the headers)."""


class UrllibWebhookResolver:
    def __init__(self, *, max_timeout_s: float = MAX_TIMEOUT_S, policy: PolicyOf = default_policy) -> None:
        self.max_timeout_s = max_timeout_s
        self.policy = policy

    def fetch(self, name: str, call: WebhookCall, variables: Mapping[str, Any]) -> Any:
        body = (call.body if call.body is not None else dict(variables)) if call.method in _BODY_METHODS else None
        timeout = min(max(parse_duration(call.timeout).total_seconds(), 0.1), self.max_timeout_s)
        try:
            status, raw = http_call.call(call.method, call.url, policy=self.policy(),
                                         headers={"Accept": "application/json", **call.headers},
                                         body=body, query=call.query_parameters, timeout=timeout,
                                         insecure=call.insecure, max_bytes=MAX_BODY_BYTES)
        except http_call.HttpCallFailed as error:
            raise WebhookError(f"{call.method} failed: {error}") from None
        if status != call.expected_status:
            raise WebhookError(f"{call.method} answered {status}, expected {call.expected_status}")
        if len(raw) > MAX_BODY_BYTES:
            raise WebhookError(f"answer larger than {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", errors="replace")
