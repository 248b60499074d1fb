"""The local stack's one HTTP front on ``MC_HOST:MC_PORT``: websocket at ``/api/ws``, the Chalice app at
``/api/*``, the console (``frontend/dist``) everywhere else. An ASGI app (``Front``) on uvicorn (h11 for HTTP/1.1,
wsproto for websockets) in a thread of its own with its own event loop.

* ``/api/ws`` is a websocket served by ``services/websocket.py`` — the same code the API Gateway handlers run —
  with the in-memory connection store and the local notifier. A connect without a valid token is accepted and at
  once closed with 4401 (browsers cannot read an HTTP 401 on a websocket). A plain request there is a 426.
* ``/api/*`` is turned into the API Gateway proxy event the Chalice app handles in Lambda, as ``chalice local``
  does (``chalice.local.LocalGateway``), with the caller's address as ``identity.sourceIp``, and run on a bounded
  pool of worker threads: a slow request never holds the event loop, the websockets or other requests.
* Anything else is a file of ``frontend/dist``; paths without one get ``index.html`` (the console's own router), or
  a page saying how to build the console when it is not built. Missing assets are 404. Hashed ``/assets/*`` are
  cached for a year, everything else revalidated (``ETag``, 304). Text files (JS, CSS, HTML, JSON, SVG) past 1 kB go
  gzip-compressed to a client that accepts it (``Vary: Accept-Encoding``; compressed once per file version).

What no client, logged in or not, can make it hold (``Limits``; the settings ``MAX_CONNECTIONS``,
``REQUEST_TIMEOUT_S``, ``MAX_BODY_BYTES``, ``FORWARDED_ALLOW_IPS``):

* Connections: at most ``max_connections`` (HTTP and websocket); one more closes the oldest connection still
  waiting for a request (a half-sent or idle one), or is refused when none is. Each is a socket and a few kB in the
  event loop: no thread. The process's open-file limit is raised to fit.
* Time: a request's head (request line and headers, at most ``MAX_HEAD_BYTES``, else 400) must arrive within
  ``request_timeout_s`` of the connection or of its first byte after a keep-alive pause; a connection idle between
  requests is closed after ``KEEP_ALIVE_S``; a body must keep coming (no pause longer than ``request_timeout_s``,
  408) and end within ``request_timeout_s`` plus its size at ``MIN_BODY_RATE`` bytes a second.
* Memory: a body declared (``Content-Length``) larger than its route takes is a 413 before a byte of it is read,
  a chunked one is cut at the limit (413); a route taking more than ``MAX_BODY_BYTES`` (firmware, backups) reads
  that much only for a caller with a valid token (else 401 before the body); all bodies held at once share
  ``BODY_BUDGET_BYTES`` (past it 503, ``Retry-After``). Refused requests are answered with ``Connection: close``, so
  the rest of their body is never read. A websocket message past four times ``MAX_MESSAGE_BYTES`` closes it
  (1009); one past ``MAX_MESSAGE_BYTES`` is answered with an error.
* Websockets: each has a bounded send queue (``send_queue_size`` messages, ``send_queue_bytes``); a client that
  does not read fills it and is closed (1013), one whose socket stays full for ``SEND_TIMEOUT_S`` is cut, so a slow
  client never holds up notify or the others. A ping every ``PING_INTERVAL_S``; one left unanswered for
  ``IDLE_TIMEOUT_S`` in all closes the connection (1001, "idle"). On shutdown every websocket is closed with 1001.

Every answer carries the security headers (``api/headers.py``: the API's policy at ``/api``, the console's
elsewhere), and CORS headers only for origins ``CORS_ORIGINS`` lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gzip
import json
import logging
import mimetypes
import re
import resource
import secrets
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import parse_qs, unquote

import h11
import uvicorn
from chalice.app import Chalice
from chalice.config import Config
from chalice.local import CustomLocalChalice, LocalChalice, LocalGateway, LocalGatewayException, RouteMatcher
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.events import CloseConnection

from ..adapters.notifier_local import LocalNotifier
from ..api.errors import ApiError, error_body
from ..api.headers import API_CSP, CONSOLE_CSP, cors_headers, preflight_headers, security_headers
from ..services.websocket import MAX_MESSAGE_BYTES, WebsocketService

if TYPE_CHECKING:
    from ..bootstrap import Container

log = logging.getLogger("mycontroller.local.front")

ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGED_CONSOLE: Final = Path(__file__).resolve().parent / "console"
"""Where the ``mycontroller`` wheel carries the built console (``packaging/server/pyproject.toml``)."""


def console_dir(root: Path = ROOT, packaged: Path = PACKAGED_CONSOLE) -> Path:
    """The built console: a checkout's ``frontend/dist`` (``make frontend``), else the wheel's; neither built, the
    checkout's path (a placeholder page says how to build it)."""
    checkout = root / "frontend" / "dist"
    if not (checkout / "index.html").is_file() and (packaged / "index.html").is_file():
        return packaged
    return checkout


STATIC_DIR: Final = console_dir()
WS_PATH: Final = "/api/ws"
SEND_QUEUE_SIZE: Final = 1024
"""Messages waiting for one websocket client before it counts as fallen behind."""
SEND_QUEUE_BYTES: Final = 8 * 1024 * 1024
"""Bytes waiting for one websocket client, at most (large events fill it before ``SEND_QUEUE_SIZE`` does)."""
SEND_TIMEOUT_S: Final = 10.0
PING_INTERVAL_S: Final = 20.0
IDLE_TIMEOUT_S: Final = 60.0
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_IDLE: Final = 1001
MAX_HEAD_BYTES: Final = 16 * 1024
"""Request line and headers (a token cookie and a bearer header fit many times over)."""
KEEP_ALIVE_S: Final = 5.0
MIN_BODY_RATE: Final = 64 * 1024
"""Bytes a second a body must average (after ``request_timeout_s``) to be read to its end."""
BODY_BUDGET_BYTES: Final = 64 * 1024 * 1024
"""Request bodies held at once, all connections together (at least the largest route limit and one more)."""
WORKERS: Final = 16
"""Threads running API requests and websocket messages (each request holds one while it runs)."""
GRACEFUL_SHUTDOWN_S: Final = 5.0
RESERVED_FILES: Final = 128
"""Open files the process keeps for itself (databases, logs, the edge agent) beside the connections."""

PLACEHOLDER: Final = """<!doctype html><html><head><meta charset="utf-8"><title>MyController</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>MyController</h1><p>The API is up at <a href="/api/status">/api/status</a>; the console is not built.</p>
<p>Build it with <code>cd frontend &amp;&amp; npm install &amp;&amp; npm run build</code>, then reload.</p>
</body></html>
"""

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """What the front lets clients hold (the module's docstring says how each is applied)."""

    max_connections: int = 1000
    request_timeout_s: float = 10.0
    max_body_bytes: int = 1024 * 1024
    keep_alive_s: float = KEEP_ALIVE_S
    max_head_bytes: int = MAX_HEAD_BYTES
    body_budget_bytes: int = BODY_BUDGET_BYTES
    workers: int = WORKERS
    send_queue_size: int = SEND_QUEUE_SIZE
    send_queue_bytes: int = SEND_QUEUE_BYTES
    send_timeout_s: float = SEND_TIMEOUT_S
    ping_interval_s: float = PING_INTERVAL_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    ws_max_bytes: int = 4 * MAX_MESSAGE_BYTES
    forwarded_allow_ips: str = ""

    @classmethod
    def from_container(cls, container: Container) -> Limits:
        settings = container.settings
        return cls(max_connections=settings.max_connections, request_timeout_s=settings.request_timeout_s,
                   max_body_bytes=settings.max_body_bytes, forwarded_allow_ips=settings.forwarded_allow_ips)


# --------------------------------------------------------------------------------------------- connections


class Connections:
    """The connection cap: who is waiting for a request head (oldest first), closed when a newcomer needs room."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.waiting: OrderedDict[FrontH11Protocol, None] = OrderedDict()
        self.evicted = 0
        self.refused = 0

    def admit(self, protocol: FrontH11Protocol) -> bool:
        """Make room for ``protocol`` (just connected, already counted); False when it has to go itself."""
        self.waiting[protocol] = None
        if len(protocol.connections) <= self.limits.max_connections:
            return True
        for old in self.waiting:
            if old is not protocol:
                self.waiting.pop(old, None)
                self.evicted += 1
                old.transport.abort()  # nothing of it to flush: it has not sent a whole request
                return True
        self.waiting.pop(protocol, None)
        self.refused += 1
        return False


class FrontH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on the request head and the connection cap (``Connections``).

    ``connections`` is set on the per-front subclass ``LocalFront`` makes."""

    front_connections: ClassVar[Connections]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if not self.front_connections.admit(self):
            log.warning("connection from %s refused: %d connections open", self.client,
                        self.front_connections.limits.max_connections)
            transport.abort()
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_protocol() is not self:  # upgraded to a websocket
            self._stop_head_timer()
            self.front_connections.waiting.pop(self, None)
            return
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._head_timer is None:  # the first bytes of a request (after a keep-alive pause)
                self._arm_head_timer()
        else:
            self._stop_head_timer()
            self.front_connections.waiting.pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.front_connections.waiting[self] = None  # idle: uvicorn's keep-alive timeout runs

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self.front_connections.waiting.pop(self, None)
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.front_connections.limits.request_timeout_s, self._head_late)

    def _stop_head_timer(self) -> None:
        timer, self._head_timer = getattr(self, "_head_timer", None), None
        if timer is not None:
            timer.cancel()

    def _head_late(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("connection from %s: no request head within %.0f s, closed", self.client,
                      self.front_connections.limits.request_timeout_s)
            self.transport.abort()


class FrontWSProtocol(WSProtocol):
    """uvicorn's wsproto websocket: a send waits for a full socket at most ``send_timeout_s``, then cuts the
    connection; an unanswered ping closes it with 1001 "idle" (uvicorn says 1011)."""

    send_timeout_s: ClassVar[float] = SEND_TIMEOUT_S

    async def send(self, message: Any) -> None:
        if not self.writable.is_set() and not self.disconnected:
            try:
                await asyncio.wait_for(self.writable.wait(), self.send_timeout_s)
            except TimeoutError:
                log.info("websocket %s: not reading for %.0f s, cut", self.client, self.send_timeout_s)
                self.transport.abort()
                raise ClientDisconnected() from None
        await super().send(message)

    def keepalive_timeout(self) -> None:
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.transport.write(self.conn.send(CloseConnection(code=CLOSE_IDLE, reason="idle")))
        self.close_sent = True
        self.transport.close()


# --------------------------------------------------------------------------------------------- websocket sink


class Waker:
    """Sets sinks' events from any thread with one call into the event loop per burst: notify offers one event to
    every subscribed socket at once, and a loop call each would cost a self-pipe write each."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[asyncio.Event] = []

    def wake(self, event: asyncio.Event) -> None:
        with self._lock:
            self._pending.append(event)
            if len(self._pending) > 1:  # a call is on its way and will see this one too
                return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the connections are gone already
            self.loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for event in pending:
            event.set()


class AsgiSink:
    """One websocket's ``notifier_local.Sink``: a bounded queue any thread fills (``offer``, ``close``) and one task
    on the event loop drains into the connection (``pump``)."""

    def __init__(self, waker: Waker, queue_size: int, queue_bytes: int = SEND_QUEUE_BYTES) -> None:
        self.waker = waker
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._frames: deque[tuple[str, int]] = deque()
        """Texts to send, with their size in bytes."""
        self._closing: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self.finished = threading.Event()
        """Set once the close frame is out (or the connection is gone)."""

    def offer(self, data: bytes) -> bool:
        with self._lock:
            if self._closing is not None or self.finished.is_set() or len(self._frames) >= self.queue_size \
                    or (self._frames and self._bytes + len(data) > self.queue_bytes):
                return False
            self._frames.append((data.decode("utf-8"), len(data)))
            self._bytes += len(data)
        self._kick()
        return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame next (what is queued is dropped), then end the connection."""
        with self._lock:
            if self._closing is not None:
                return
            self._closing = (code, reason)
            self._frames.clear()
            self._bytes = 0
        self._kick()

    def _kick(self) -> None:
        self.waker.wake(self._wake)

    async def pump(self, send: Send) -> None:
        """Send what is queued until a close is asked for; returns once the close frame is out."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while True:
                    with self._lock:
                        closing = self._closing
                        text: str | None = None
                        if closing is None and self._frames:
                            text, size = self._frames.popleft()
                            self._bytes -= size
                    if closing is not None:
                        code, reason = closing
                        await send({"type": "websocket.close", "code": code, "reason": reason})
                        return
                    if text is None:
                        break
                    await send({"type": "websocket.send", "text": text})
        except (ClientDisconnected, OSError, RuntimeError):
            return
        finally:
            self.finished.set()


# --------------------------------------------------------------------------------------------- the gateway


class _Gateway(LocalGateway):
    """``chalice local``'s API Gateway emulation, with the caller's address in ``identity.sourceIp`` (it says
    127.0.0.1 always) and an unknown path answered 404 in our error shape, as the deployed API answers it."""

    def __init__(self, app: Chalice, config: Config) -> None:
        super().__init__(app, config)
        self._caller = threading.local()

    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        event = super()._generate_lambda_event(method, path, headers, body)
        event["requestContext"]["identity"]["sourceIp"] = getattr(self._caller, "address", "") or "127.0.0.1"
        return event

    def call(self, method: str, path: str, headers: dict[str, str], body: bytes, address: str,
             ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``(status, headers, body)`` of one request (runs in a worker thread)."""
        self._caller.address = address
        try:
            response = self.handle_request(method=method, path=path, headers=headers, body=body or None)
        except LocalGatewayException as error:
            said = error.body or b""
            if error.CODE == 403 and (b"Missing Authentication Token" in said or b"requires 'Credential'" in said):
                return _json(404, error_body(404, "Not found"))  # no route matched
            return error.CODE, _encode_headers({"Content-Type": "application/json", **error.headers}), \
                error.body or b""
        finally:
            self._caller.address = ""
        headers_out: dict[str, Any] = dict(response.get("headers") or {})
        headers_out.update(response.get("multiValueHeaders") or {})
        headers_out.setdefault("Content-Type", "application/json")
        raw = response.get("body")
        if response.get("isBase64Encoded") and raw is not None:
            import base64

            data = base64.b64decode(raw)
        else:
            data = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
        return int(response["statusCode"]), _encode_headers(headers_out), data


def _encode_headers(headers: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        if name.lower() in ("content-length", "transfer-encoding"):  # the front says how long the body is
            continue
        for item in value if isinstance(value, list) else [value]:
            out.append((name.encode("latin-1"), str(item).encode("latin-1")))
    return out


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None,
          ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, _encode_headers({"Content-Type": "application/json", **(headers or {})}), \
        json.dumps(body, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------- the ASGI app


class BodyBudget:
    """Request body bytes held at once, by all connections together (event loop only: no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held = max(0, self.held - size)


class Front:
    """The ASGI app: ``/api/ws`` to the websocket service, ``/api/*`` to the Chalice app, the rest to files."""

    def __init__(self, container: Container, app: Chalice, *, websocket: WebsocketService, notifier: LocalNotifier,
                 static_dir: Path, limits: Limits, executor: ThreadPoolExecutor) -> None:
        self.container = container
        self.websocket = websocket
        self.notifier = notifier
        self.static_dir = static_dir
        self.limits = limits
        self.executor = executor
        self.origins = container.settings.allowed_origins()
        self.gateway = _Gateway(app, Config.create(app_name=app.app_name, chalice_stage="local"))
        self.matcher = RouteMatcher(list(app.routes))
        self.body_limits = self._body_limits()
        largest = max([limits.max_body_bytes, *self.body_limits.values()])
        self.budget = BodyBudget(max(limits.body_budget_bytes, largest + limits.max_body_bytes))
        self.sinks: set[AsgiSink] = set()
        self.waker: Waker | None = None

    def _body_limits(self) -> dict[tuple[str, str], int]:
        """Routes taking bodies larger than ``MAX_BODY_BYTES`` (firmware, backups), by resource path and method."""
        from ..api.routes import ROUTES

        return {(route.path, route.method): route.body_limit(self.container)
                for route in ROUTES if route.body_limit is not None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, _with_headers(scope, send, self.origins))
        elif scope["type"] == "websocket":
            if scope["path"].rstrip("/") != WS_PATH:
                await _reject_websocket(scope, send, self.origins)
            else:
                await self._websocket(scope, receive, send)

    # ----------------------------------------------------------------------------------------- HTTP

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        try:
            if path.rstrip("/") == WS_PATH:
                await _answer(send, *_json(426, error_body(426, "a websocket upgrade is required here"),
                                           {"Upgrade": "websocket", "Connection": "Upgrade"}))
            elif path == "/api" or path.startswith("/api/"):
                await self._api(scope, receive, send)
            else:
                await self._static(scope, send)
        except ApiError as refused:  # a request the front answers itself (413, 408, 401, 503…), then hangs up
            await _answer(send, *_json(refused.status, refused.body(), {**refused.headers, "Connection": "close"}))
        except ClientDisconnected:
            return
        except Exception:
            log.exception("front: %s %s failed", scope.get("method"), path)
            await _answer(send, *_json(500, error_body(500, "internal server error"), {"Connection": "close"}))

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        headers = _header_map(scope)
        if method == "OPTIONS" and "access-control-request-method" in headers and self.origins:
            await _answer(send, 204, _encode_headers(preflight_headers(headers.get("origin"), self.origins)), b"")
            return
        target = scope["raw_path"].decode("latin-1") + (
            "?" + scope["query_string"].decode("latin-1") if scope["query_string"] else "")
        limit = self._limit(method, scope["path"])
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            raise ApiError(413, f"request body is {declared} bytes, more than {limit}", "body")
        if limit > self.limits.max_body_bytes and (declared is None or declared > self.limits.max_body_bytes):
            await self._authenticated(headers, scope)  # a large body is read for a known caller only
        held = 0
        try:
            body, held = await self._body(receive, limit, declared)
            if scope["scheme"] == "https":
                headers["x-forwarded-proto"] = "https"  # TLS here, or at a proxy FORWARDED_ALLOW_IPS trusts
            client = scope.get("client")
            address = str(client[0]) if client else ""
            loop = asyncio.get_running_loop()
            status, out, data = await loop.run_in_executor(self.executor, self.gateway.call, method, target, headers,
                                                           body, address)
        finally:
            self.budget.give(held)
        await _answer(send, status, out, data)

    def _limit(self, method: str, path: str) -> int:
        if not self.body_limits:
            return self.limits.max_body_bytes
        try:
            route = self.matcher.match_route(path).route
        except ValueError:
            return self.limits.max_body_bytes
        return self.body_limits.get((route, method), self.limits.max_body_bytes)

    async def _authenticated(self, headers: dict[str, str], scope: Scope) -> None:
        from ..api.auth import authenticate

        query = parse_qs(scope["query_string"].decode("latin-1"))
        loop = asyncio.get_running_loop()
        principal = await loop.run_in_executor(self.executor, authenticate, self.container.auth, headers, query)
        if principal is None:
            raise ApiError(401, "authentication required before a body this large is read", "authorization",
                           {"WWW-Authenticate": 'Bearer realm="mycontroller"'})

    async def _body(self, receive: Receive, limit: int, declared: int | None) -> tuple[bytes, int]:
        """The body and the budget it holds; an ``ApiError`` when it is too large, too slow or over the budget."""
        loop = asyncio.get_running_loop()
        timeout = self.limits.request_timeout_s
        deadline = loop.time() + timeout + (declared if declared is not None else limit) / MIN_BODY_RATE
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                wait = min(timeout, deadline - loop.time())
                if wait <= 0:
                    raise ApiError(408, "the request body came too slowly", "body")
                try:
                    message = await asyncio.wait_for(receive(), wait)
                except TimeoutError:
                    raise ApiError(408, f"no part of the request body came for {wait:.0f} s", "body") from None
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected()
                chunk: bytes = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, f"request body is more than {limit} bytes", "body")
                    if not self.budget.take(len(chunk)):
                        raise ApiError(503, "too many request bodies at once; try again", "body",
                                       {"Retry-After": "5"})
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks), size
        except BaseException:
            self.budget.give(sum(len(chunk) for chunk in chunks))
            raise

    # ----------------------------------------------------------------------------------------- static files

    async def _static(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _answer(send, *_json(405, error_body(405, "method not allowed"), {"Allow": "GET, HEAD"}))
            return
        loop = asyncio.get_running_loop()
        path: str = scope["path"]
        status, headers, body = await loop.run_in_executor(self.executor, self._file, path, _header_map(scope))
        await _answer(send, status, headers, body)

    def _file(self, path: str, request: Mapping[str, str]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        root = self.static_dir
        target = _safe_path(root, path)
        if target is not None and target.is_file():
            cache = "public, max-age=31536000, immutable" if path.startswith("/assets/") else "no-cache"
            return _file_answer(target, mimetypes.guess_type(target.name)[0] or "application/octet-stream", cache,
                                request)
        if path.startswith("/assets/") or mimetypes.guess_type(path.rsplit("/", 1)[-1])[0] is not None:
            # an asset that is not there (a page path such as /nodes/sim.1 has no known file type: the app's)
            return 404, _encode_headers({"Content-Type": "text/plain; charset=utf-8"}), b"not found\n"
        index = root / "index.html"
        if index.is_file():
            return _file_answer(index, "text/html", "no-cache", request)
        return 200, _encode_headers({"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"}), \
            PLACEHOLDER.encode()

    # ----------------------------------------------------------------------------------------- websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        loop = asyncio.get_running_loop()
        connection_id = secrets.token_urlsafe(12)
        query = parse_qs(scope["query_string"].decode("latin-1"))
        headers = _header_map(scope)
        if self.waker is None or self.waker.loop is not loop:
            self.waker = Waker(loop)
        sink = AsgiSink(self.waker, self.limits.send_queue_size, self.limits.send_queue_bytes)
        self.sinks.add(sink)
        self.notifier.register(connection_id, sink)
        connected = False
        pump: asyncio.Task[None] | None = None
        try:
            record = await loop.run_in_executor(self.executor, lambda: self.websocket.connect(
                connection_id, query=query, headers=headers))
            connected = record is not None
            await send({"type": "websocket.accept", "headers": _encode_headers(security_headers(API_CSP))})
            if not connected:
                await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": "unauthorized"})
                return
            pump = asyncio.create_task(self._pump(sink, send))
            reader = asyncio.create_task(self._read(connection_id, receive))
            done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                sink.close(1000, "")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(pump), 2.0)  # a close frame on its way gets out
        except ClientDisconnected:
            pass
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
            sink.finished.set()
            self.sinks.discard(sink)
            self.notifier.unregister(connection_id)
            if connected:
                try:
                    await loop.run_in_executor(self.executor, self.websocket.disconnect, connection_id)
                except Exception:
                    log.exception("websocket %s: disconnect failed", connection_id)

    async def _pump(self, sink: AsgiSink, send: Send) -> None:
        await sink.pump(send)

    async def _read(self, connection_id: str, receive: Receive) -> None:
        """Client messages, one at a time, to the service (its answers come back through the sink)."""
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            if text is None:
                reply = {"type": "error", "message": "binary messages are not supported"}
                await loop.run_in_executor(self.executor, self.websocket.send, connection_id, reply)
            else:  # the service answers one past MAX_MESSAGE_BYTES with an error
                await loop.run_in_executor(self.executor, self.websocket.message, connection_id, text)


# --------------------------------------------------------------------------------------------- helpers


def _header_map(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; repeated ones joined as HTTP joins them (cookies with ``; ``)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            headers[name] += ("; " if name == "cookie" else ", ") + value
        else:
            headers[name] = value
    return headers


def _content_length(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw.split(",")[0].strip())  # h11 has refused a malformed or conflicting one already
    except ValueError:
        raise ApiError(400, "Content-Length is not a number", "Content-Length") from None


def _with_headers(scope: Scope, send: Send, origins: tuple[str, ...]) -> Send:
    """``send`` adding the security headers (and CORS for an allowed origin at ``/api``) an answer lacks."""
    api = scope["path"] == "/api" or scope["path"].startswith("/api/")
    extra = security_headers(API_CSP if api else CONSOLE_CSP)
    if api and origins:
        extra.update(cors_headers(_header_map(scope).get("origin"), origins))

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            present = {name.lower() for name, _ in headers}
            headers += [(name.encode(), value.encode()) for name, value in extra.items()
                        if name.lower().encode() not in present]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _reject_websocket(scope: Scope, send: Send, origins: tuple[str, ...]) -> None:
    """A websocket handshake anywhere but ``/api/ws``: 404, as a plain request there would be."""
    status, headers, body = _json(404, error_body(404, "Not found: the websocket is at /api/ws"))
    headers += [(k.encode(), v.encode()) for k, v in security_headers(API_CSP).items()]
    await send({"type": "websocket.http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


def _safe_path(root: Path, path: str) -> Path | None:
    """The file under ``root`` a URL path names, or ``None`` if it would leave ``root``."""
    relative = unquote(path).lstrip("/")
    if not relative or "\x00" in relative:
        return None
    try:
        target = (root / relative).resolve()
        target.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return target


def _file_answer(target: Path, content_type: str, cache: str, request: Mapping[str, str],
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A file, or 304 when the client's copy (``If-None-Match``) is current."""
    stat = target.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
        content_type += "; charset=utf-8"
    headers = {"Cache-Control": cache, "ETag": etag,
               "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True)}
    compress = content_type.startswith(COMPRESSIBLE) and stat.st_size > 1024
    if compress:
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(request.get("accept-encoding", "")):
            headers["ETag"] = etag = etag[:-1] + '-gz"'
            headers["Content-Encoding"] = "gzip"
        else:
            compress = False
    wanted = request.get("if-none-match")
    if wanted and etag in {tag.strip().removeprefix("W/") for tag in wanted.split(",")}:
        return 304, _encode_headers(headers), b""
    body = _gzipped(target, etag) if compress else target.read_bytes()
    return 200, _encode_headers({"Content-Type": content_type, **headers}), body


COMPRESSIBLE: Final = ("text/", "application/javascript", "application/json", "image/svg+xml")
_GZIPPED: Final[OrderedDict[tuple[str, str], bytes]] = OrderedDict()
_GZIPPED_LOCK: Final = threading.Lock()


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` takes gzip (or ``*``) with a quality above zero."""
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(quality) > 0
            except ValueError:
                return False
    return False


def _gzipped(target: Path, etag: str) -> bytes:
    """The file gzip-compressed, compressed once per version (``etag``); the last 64 versions are kept."""
    key = (str(target), etag)
    with _GZIPPED_LOCK:
        found = _GZIPPED.get(key)
        if found is not None:
            _GZIPPED.move_to_end(key)
            return found
    body = gzip.compress(target.read_bytes(), compresslevel=6, mtime=0)
    with _GZIPPED_LOCK:
        _GZIPPED[key] = body
        while len(_GZIPPED) > 64:
            _GZIPPED.popitem(last=False)
    return body


def _raise_open_files(wanted: int) -> int:
    """Raise this process's soft limit of open files towards ``wanted`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return int(soft)


# --------------------------------------------------------------------------------------------- the server


class RedactTokens(logging.Filter):
    """uvicorn logs a websocket's path with its query: the ``access_token`` there is no log's business."""

    PATTERN: ClassVar = re.compile(r"(access_token=)[^&\s\"']*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and "access_token" in arg.lower()
                                                  for arg in record.args):
            record.args = tuple(self.PATTERN.sub(r"\1***", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def _redact_uvicorn_logs() -> None:
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(item, RedactTokens) for item in logger.filters):
            logger.addFilter(RedactTokens())


class LocalFront:
    """The front server: uvicorn serving ``Front`` on ``host:port`` (0: a free port; ``port`` says which).
    ``serve_forever`` blocks until ``shutdown`` (from another thread) has closed every websocket (1001) and
    stopped it."""

    def __init__(self, container: Container, host: str, port: int, *, app: Chalice | None = None,
                 static_dir: Path = STATIC_DIR, limits: Limits | None = None) -> None:
        from ..api import build_api

        limits = limits or Limits.from_container(container)
        open_files = _raise_open_files(limits.max_connections + RESERVED_FILES)
        if open_files - RESERVED_FILES < limits.max_connections:
            log.warning("open files limited to %d: at most %d connections", open_files, open_files - RESERVED_FILES)
            limits = replace(limits, max_connections=max(16, open_files - RESERVED_FILES))
        self.limits = limits
        _redact_uvicorn_logs()
        app = app if app is not None else build_api(container)
        if not isinstance(app, LocalChalice):  # thread-local current_request, as ``chalice local`` makes it
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        self.websocket: WebsocketService = container.websocket
        self.notifier: LocalNotifier = container.local_notifier()
        self.executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="front")
        self.app = Front(container, app, websocket=self.websocket, notifier=self.notifier, static_dir=static_dir,
                         limits=limits, executor=self.executor)
        self.connections = Connections(limits)
        http = type("FrontH11", (FrontH11Protocol,), {"front_connections": self.connections})
        ws = type("FrontWS", (FrontWSProtocol,), {"send_timeout_s": limits.send_timeout_s})
        forwarded = limits.forwarded_allow_ips.strip()
        self.config = uvicorn.Config(
            self.app, http=http, ws=ws, lifespan="off", interface="asgi3", log_config=None, access_log=False,
            server_header=False, proxy_headers=bool(forwarded), forwarded_allow_ips=forwarded or None,
            limit_concurrency=limits.max_connections + 16, backlog=2048, timeout_keep_alive=int(limits.keep_alive_s),
            h11_max_incomplete_event_size=limits.max_head_bytes, ws_max_size=limits.ws_max_bytes,
            ws_ping_interval=limits.ping_interval_s, ws_ping_timeout=max(0.1, limits.idle_timeout_s
                                                                          - limits.ping_interval_s),
            ws_per_message_deflate=False, timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(2048)
        self.socket.setblocking(False)
        self.host, self.port = host, int(self.socket.getsockname()[1])
        self.server = uvicorn.Server(self.config)
        self._stopped = threading.Event()

    @property
    def static_dir(self) -> Path:
        return self.app.static_dir

    @static_dir.setter
    def static_dir(self, value: Path) -> None:
        self.app.static_dir = value

    def serve_forever(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Close every websocket (1001, going away), then stop accepting and serving."""
        self.notifier.close_all(1001, "server stopping")
        deadline = time.monotonic() + 2.0
        for sink in list(self.app.sinks):  # the close frames go out
            sink.finished.wait(max(0.0, deadline - time.monotonic()))
        self.server.should_exit = True
        self._stopped.wait(GRACEFUL_SHUTDOWN_S + 5)
        self.executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            self.socket.close()
