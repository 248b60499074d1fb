"""``WebhookResolver`` over urllib: the HTTP calls of tasks' ``webhook`` variables and evaluations.

Standard library only (no extra dependency in the Lambda bundle). Every call has the task's timeout (``10s`` by
default, at most ``MAX_TIMEOUT_S``) and reads at most ``MAX_BODY_BYTES``; a status other than the expected one,
or a transport error raises, which fails that one evaluation with a message naming the variable; a body that is
not JSON comes back as text. ``insecure`` skips TLS verification, as the reference allows for self-signed devices.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from ..core.automation.clock import parse_duration
from ..core.automation.models import WebhookCall

MAX_TIMEOUT_S: Final = 30.0
MAX_BODY_BYTES: Final = 1024 * 1024
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class WebhookError(RuntimeError):
    """A webhook call that did not answer as expected; the message says how (never the headers)."""


class UrllibWebhookResolver:
    def __init__(self, *, max_timeout_s: float = MAX_TIMEOUT_S) -> None:
        self.max_timeout_s = max_timeout_s

    def fetch(self, name: str, call: WebhookCall, variables: Mapping[str, Any]) -> Any:
        url = call.url
        if call.query_parameters:
            query = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v)
                                            for k, v in call.query_parameters.items()})
            url += ("&" if urllib.parse.urlsplit(url).query else "?") + query
        data: bytes | None = None
        headers = {"Accept": "application/json", **call.headers}
        if call.method in _BODY_METHODS:
            body = call.body if call.body is not None else variables
            data = body.encode() if isinstance(body, str) else json.dumps(body, default=str).encode()
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(url, data=data, method=call.method, headers=headers)
        timeout = min(max(parse_duration(call.timeout).total_seconds(), 0.1), self.max_timeout_s)
        context = ssl._create_unverified_context() if call.insecure else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                status, raw = response.status, response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read(MAX_BODY_BYTES + 1) if error.fp else b""
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise WebhookError(f"{call.method} failed: {reason}") from None
        if status != call.expected_status:
            raise WebhookError(f"{call.method} answered {status}, expected {call.expected_status}")
        if len(raw) > MAX_BODY_BYTES:
            raise WebhookError(f"answer larger than {MAX_BODY_BYTES} bytes")
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", errors="replace")
            return text
