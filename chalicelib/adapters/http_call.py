"""One HTTP call over urllib, for the two places that call webhooks: tasks' ``webhook`` variables
(``webhook_urllib``) and webhook handlers (``handler_webhook``).

Standard library only (no extra dependency in the Lambda bundle). The query is appended to the URL's own; a body
that is text or bytes goes as it is, anything else as JSON; ``insecure`` skips TLS verification (self-signed
devices, as the reference allows). A status is an answer, not an error: the caller decides what it expected.
Transport failures raise ``HttpCallFailed`` naming only scheme, host and path (a URL's query may hold a key).

Every connection, the first and each redirect's, goes through the outbound policy (``adapters/outbound.py``): a
refused address raises ``HttpCallRefused``, which no retry can change. Only ``http``/``https`` (no ``file:``,
``ftp:`` or ``data:``, also after a redirect) and no environment proxy (the address checked must be the one
connected to). The answer is read up to ``max_bytes + 1`` bytes (the rest is never read: the connection is
closed) and within ``timeout`` in all, however slowly it trickles.
"""

from __future__ import annotations

import functools
import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from .errors import AdapterError
from .outbound import OutboundPolicy, OutboundRefused, connect_checked

BODYLESS: Final = frozenset({"GET", "HEAD", "DELETE"})


class HttpCallFailed(AdapterError, RuntimeError):
    """The call got no HTTP answer (refused, timed out, bad TLS…)."""


class HttpCallRefused(HttpCallFailed):
    """The outbound policy does not allow the address (of the URL or of a redirect): retrying cannot help."""


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


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_connect, policy)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """``HTTPSConnection.connect`` wraps what ``_create_connection`` connected, verifying the host name."""

    def __init__(self, *args: Any, policy: OutboundPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_connect, policy)


def _connect(policy: OutboundPolicy, address: tuple[str, int], timeout: Any = None,
             source_address: Any = None) -> Any:
    return connect_checked(address[0], address[1], timeout if isinstance(timeout, int | float) else None, policy,
                           source_address)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_CheckedHTTPConnection, policy=self.policy), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: OutboundPolicy, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.policy = policy
        self.context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_CheckedHTTPSConnection, policy=self.policy), req,
                            context=self.context)


def _opener(policy: OutboundPolicy, insecure: bool, follow_redirects: bool) -> urllib.request.OpenerDirector:
    """HTTP and HTTPS under the policy, redirects (or not), errors as answers; nothing else (no proxy, no file:)."""
    context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
    opener = urllib.request.OpenerDirector()
    for handler in (_HTTPHandler(policy), _HTTPSHandler(policy, context), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler() if follow_redirects else _NoRedirect(),
                    urllib.request.HTTPErrorProcessor(), urllib.request.UnknownHandler()):
        opener.add_handler(handler)
    return opener


def _read(response: Any, max_bytes: int, deadline: float) -> bytes:
    """Up to ``max_bytes + 1`` bytes of an answer, before ``deadline`` (``TimeoutError`` after it)."""
    read = getattr(response, "read1", None) or response.read
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took longer than the call's timeout")
        chunk = read(min(64 * 1024, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def call(method: str, url: str, *, policy: OutboundPolicy, headers: Mapping[str, str] | None = None,
         body: Any = None, query: Mapping[str, Any] | None = None, timeout: float = 10.0, insecure: bool = False,
         follow_redirects: bool = True, max_bytes: int = 64 * 1024) -> tuple[int, bytes]:
    """``(status, up to max_bytes + 1 bytes of the answer)``; raises ``HttpCallRefused`` for an address the policy
    refuses, ``HttpCallFailed`` for any other call without an answer."""
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
    deadline = time.monotonic() + timeout
    try:
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        with _opener(policy, insecure, follow_redirects).open(request, timeout=timeout) as response:
            return int(response.status), _read(response, max_bytes, deadline)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), _read(error.fp, max_bytes, deadline) if error.fp else b""
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, OutboundRefused):
            raise HttpCallRefused(f"{where(method, url)}: refused: {reason}") from None
        raise HttpCallFailed(f"{where(method, url)}: {type(error).__name__}: {reason}") from None
