"""Webhook handler calls over HTTP(S) with urllib: method, headers, query, body, expected status.

The body is sent as it is when it is text (``Content-Type`` from the headers, ``text/plain`` by default) and as
JSON otherwise. Basic auth comes from the spec's ``username``/``password``. A transport error or a status other
than the expected one raises a retryable ``HandlerCallError`` (the queue delivers again, then dead-letters); an
address the outbound policy refuses (``core/outbound.py``: loopback, link-local, private networks in AWS, unless the
system settings allow them) fails at once, recorded in the handler's state, never retried. Redirects are not
followed (the status is the answer); at most ``MAX_RESPONSE_BYTES`` of the answer are read. The URL is not put in
messages (its query may hold a key); only scheme, host and path are.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from chalicelib.core.ports import HandlerCallError

from . import http_call
from .outbound import PolicyOf, default_policy

MAX_RESPONSE_BYTES: Final = 64 * 1024


class WebhookExecutor:
    def __init__(self, policy: PolicyOf = default_policy) -> None:
        self.policy = policy
        """The outbound policy now (the system settings' allow list, re-read every few seconds)."""

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        method = str(params.get("method") or "POST").upper()
        url = str(params["url"])
        headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
        if spec.get("username") and "authorization" not in {k.lower() for k in headers}:
            token = base64.b64encode(f"{spec['username']}:{spec.get('password', '')}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        expected = int(params.get("expectedStatus") or 200)
        try:
            status, _ = http_call.call(method, url, policy=self.policy(), headers=headers, body=params.get("body"),
                                       query=dict(params.get("query") or {}),
                                       timeout=float(params.get("timeoutSeconds") or 10),
                                       insecure=bool(params.get("insecure")), follow_redirects=False,
                                       max_bytes=MAX_RESPONSE_BYTES)
        except http_call.HttpCallRefused as error:
            raise HandlerCallError(str(error), retryable=False) from None
        except http_call.HttpCallFailed as error:
            raise HandlerCallError(str(error)) from None
        if status != expected:
            raise HandlerCallError(f"{http_call.where(method, url)}: status {status}, "
                                   f"expected {expected}")
        return {"status": status}
