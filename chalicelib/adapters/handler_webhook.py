"""Webhook handler calls over HTTP(S) with urllib: method, headers, query, body, expected status.

The body is sent as it is when it is text (``Content-Type`` from the headers, ``text/plain`` by default) and as
JSON otherwise. Basic auth comes from the spec's ``username``/``password``. A transport error or a status other
than the expected one raises a retryable ``HandlerCallError`` (the queue delivers again, then dead-letters). The
URL is not put in messages (its query may hold a key); only scheme, host and path are.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from chalicelib.core.ports import HandlerCallError

MAX_RESPONSE_BYTES: Final = 64 * 1024
BODYLESS: Final = frozenset({"GET", "HEAD", "DELETE"})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: the expected status decides (a 302 from a login page is no success)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _with_query(url: str, query: dict[str, Any]) -> str:
    if not query:
        return url
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(str(key), v if isinstance(v, str) else json.dumps(v)) for v in values]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(pairs)))


class WebhookExecutor:
    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        method = str(params.get("method") or "POST").upper()
        url = _with_query(str(params["url"]), dict(params.get("query") or {}))
        headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
        lower = {k.lower() for k in headers}
        body = params.get("body")
        data: bytes | None = None
        if body is not None and method not in BODYLESS:
            if isinstance(body, str | bytes):
                data = body.encode() if isinstance(body, str) else body
                if "content-type" not in lower:
                    headers["Content-Type"] = "text/plain; charset=utf-8"
            else:
                data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                if "content-type" not in lower:
                    headers["Content-Type"] = "application/json"
        if spec.get("username") and "authorization" not in lower:
            token = base64.b64encode(f"{spec['username']}:{spec.get('password', '')}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        expected = int(params.get("expectedStatus") or 200)
        timeout = float(params.get("timeoutSeconds") or 10)
        handlers: list[Any] = [_NoRedirect()]
        if params.get("insecure"):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        where = f"{method} {_where(url)}"
        try:
            with opener.open(request, timeout=timeout) as response:
                status = int(response.status)
                response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            status = int(error.code)
            error.close()
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise HandlerCallError(f"{where}: {type(error).__name__}: {reason}") from None
        if status != expected:
            raise HandlerCallError(f"{where}: status {status}, expected {expected}")
        return {"status": status}
