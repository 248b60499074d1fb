"""One HTTP call over urllib, for the two places that call webhooks: tasks' ``webhook`` variables
(``webhook_urllib``) and webhook handlers (``handler_webhook``).

Standard library only (no extra dependency in the Lambda bundle). The query is appended to the URL's own; a body
that is text or bytes goes as it is, anything else as JSON; ``insecure`` skips TLS verification (self-signed
devices, as the reference allows). A status is an answer, not an error: the caller decides what it expected.
Transport failures raise ``HttpCallFailed`` naming only scheme, host and path (a URL's query may hold a key).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from .errors import AdapterError

BODYLESS: Final = frozenset({"GET", "HEAD", "DELETE"})


class HttpCallFailed(AdapterError, RuntimeError):
    """The call got no HTTP answer (refused, timed out, bad TLS…)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: the expected status decides (a 302 from a login page is no success)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def where(method: str, url: str) -> str:
    """``METHOD scheme://host[:port]/path``: what messages may say of a call."""
    parts = urllib.parse.urlsplit(url)
    return f"{method} {parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def with_query(url: str, query: Mapping[str, Any]) -> str:
    """The URL with these parameters added to its own (lists repeat the key; non-text values as JSON)."""
    if not query:
        return url
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(str(key), v if isinstance(v, str) else json.dumps(v)) for v in values]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(pairs)))


def call(method: str, url: str, *, headers: Mapping[str, str] | None = None, body: Any = None,
         query: Mapping[str, Any] | None = None, timeout: float = 10.0, insecure: bool = False,
         follow_redirects: bool = True, max_bytes: int = 64 * 1024) -> tuple[int, bytes]:
    """``(status, up to max_bytes + 1 bytes of the answer)``; raises ``HttpCallFailed`` without an answer."""
    method = method.upper()
    url = with_query(url, query or {})
    sent = {str(k): str(v) for k, v in (headers or {}).items()}
    lower = {k.lower() for k in sent}
    data: bytes | None = None
    if body is not None and method not in BODYLESS:
        if isinstance(body, str | bytes):
            data = body.encode() if isinstance(body, str) else body
            if "content-type" not in lower:
                sent["Content-Type"] = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()
            if "content-type" not in lower:
                sent["Content-Type"] = "application/json"
    handlers: list[Any] = [] if follow_redirects else [_NoRedirect()]
    if insecure:
        handlers.append(urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return int(response.status), response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read(max_bytes + 1) if error.fp else b""
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise HttpCallFailed(f"{where(method, url)}: {type(error).__name__}: {reason}") from None
