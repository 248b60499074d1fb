"""The local stack's one HTTP front on ``MC_HOST:MC_PORT``: websocket at ``/api/ws``, the Chalice app at
``/api/*``, the dashboard (``frontend/dist``) everywhere else.

* ``/api/ws`` upgrades to an RFC 6455 websocket (wsproto) served by ``services/websocket.py`` — the same code the
  API Gateway handlers run — with the in-memory connection store and the local notifier. A connect without a
  valid token is accepted and at once closed with code 4401 (browsers cannot read an HTTP 401 on a websocket).
* ``/api/*`` goes to Chalice's local gateway exactly as ``chalice local`` does.
* Anything else is a file of ``frontend/dist``; paths without one get ``index.html`` (the dashboard's own
  router), or a page saying how to build the dashboard when it is not built. Missing assets are 404.

Threads: one per HTTP connection (as ``chalice local``; for a websocket, its reader), and one ``Sender`` that
writes every websocket's frames to non-blocking sockets. Each websocket has a bounded frame queue: a client that
does not read fills it and is closed (1013), one whose socket stays full for ``SEND_TIMEOUT_S`` is cut, so a slow
client never holds up notify or the other clients. Idle sockets get a ping every ``PING_INTERVAL_S``; one silent
for ``IDLE_TIMEOUT_S`` is closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import secrets
import select
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, ThreadedHTTPServer
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..adapters.notifier_local import LocalNotifier
from ..services.websocket import MAX_MESSAGE_BYTES, WebsocketService

log = logging.getLogger("mycontroller.local.front")

ROOT: Final = Path(__file__).resolve().parents[2]
STATIC_DIR: Final = ROOT / "frontend" / "dist"
WS_PATH: Final = "/api/ws"
SEND_QUEUE_SIZE: Final = 1024
"""Messages waiting for one client before it counts as fallen behind."""
SEND_TIMEOUT_S: Final = 10.0
PING_INTERVAL_S: Final = 20.0
IDLE_TIMEOUT_S: Final = 60.0
CLOSE_UNAUTHORIZED: Final = 4401

PLACEHOLDER: Final = """<!doctype html><html><head><meta charset="utf-8"><title>MyController</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>MyController</h1><p>The API is up at <a href="/api/status">/api/status</a>; the dashboard is not built.</p>
<p>Build it with <code>cd frontend &amp;&amp; npm install &amp;&amp; npm run build</code>, then reload.</p>
</body></html>
"""


class Sender:
    """The one thread that writes to every websocket. Sockets are non-blocking: a connection whose socket is full
    waits for writability (``select``) while the others go on; its frames wait in its own bounded queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[LocalWebsocket, None] = {}
        """Connections with frames to send (insertion-ordered, deduplicated)."""
        self._blocked: dict[LocalWebsocket, float] = {}
        """Connections whose socket was full, with when it first was."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="ws-sender", daemon=True)
        self._thread.start()

    def kick(self, connection: LocalWebsocket) -> None:
        with self._lock:
            if connection in self._blocked:  # select will say when it can take more
                return
            self._ready[connection] = None
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def forget(self, connection: LocalWebsocket) -> None:
        with self._lock:
            self._ready.pop(connection, None)
            self._blocked.pop(connection, None)

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopped:
            with self._lock:
                ready, self._ready = list(self._ready), {}
            for connection in ready:
                try:
                    done = connection.flush()
                except Exception:  # one connection's trouble is never the sender's
                    log.exception("websocket %s: send failed", connection.connection_id)
                    connection.kill()
                    done = True
                if not done:
                    with self._lock:
                        self._blocked.setdefault(connection, time.monotonic())
            with self._lock:
                blocked = dict(self._blocked)
                self._woken = bool(self._ready)
                pending = bool(self._ready)
            waiting = {c.sock.fileno(): c for c in blocked if not c.dead and c.sock.fileno() >= 0}
            poller = select.poll()  # not select(): file descriptors past 1023 are fine
            poller.register(self._wake_r, select.POLLIN)
            for fd in waiting:
                poller.register(fd, select.POLLOUT)
            try:
                polled = poller.poll(0 if pending else (1000 if waiting else None))
            except OSError:
                polled = []
            wake_fd = self._wake_r.fileno()
            if any(fd == wake_fd for fd, _ in polled):
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
            now = time.monotonic()
            with self._lock:
                for fd, _ in polled:  # writable, or an error the next send reports
                    writable = waiting.get(fd)
                    if writable is not None:
                        self._blocked.pop(writable, None)
                        self._ready[writable] = None
                for connection, since in list(self._blocked.items()):
                    if connection.dead or now - since > SEND_TIMEOUT_S:
                        self._blocked.pop(connection, None)
                        if not connection.dead:
                            log.info("websocket %s: not reading for %.0f s, closed", connection.connection_id,
                                     SEND_TIMEOUT_S)
                            connection.kill()


class LocalWebsocket:
    """One accepted websocket. Its reader loop runs in the HTTP connection's thread; what it sends is encoded at
    once and queued (bounded) for the shared ``Sender``."""

    def __init__(self, sock: socket.socket, ws: WSConnection, service: WebsocketService, notifier: LocalNotifier,
                 sender: Sender, connection_id: str, *, queue_size: int = SEND_QUEUE_SIZE) -> None:
        self.sock = sock
        self.ws = ws
        self.service = service
        self.notifier = notifier
        self.sender = sender
        self.connection_id = connection_id
        self.queue_size = queue_size
        self._lock = threading.Lock()
        """Guards wsproto's state and the frame queue (the reader, notify and the sender all touch them)."""
        self._frames: deque[bytes] = deque()
        self._offset = 0
        """How much of the first frame is already sent."""
        self._closing: tuple[int, str] | None = None
        self._shutdown_when_sent = False
        self._sent_all = threading.Event()
        self._sent_all.set()  # nothing queued yet
        self.dead = False

    # ----------------------------------------------------------------------------------------- Sink

    def offer(self, data: bytes) -> bool:
        with self._lock:
            if self._closing is not None or self.dead or len(self._frames) >= self.queue_size:
                return False
            try:
                self._frames.append(self.ws.send(Message(data=data.decode("utf-8"))))
            except LocalProtocolError:
                return False
            self._sent_all.clear()
        self.sender.kick(self)
        return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame next (what is queued and not begun is dropped), then shut the socket."""
        with self._lock:
            if self._closing is not None or self.dead:
                return
            self._closing = (code, reason)
            while len(self._frames) > (1 if self._offset else 0):  # a frame begun must end, or framing breaks
                self._frames.pop()
            with contextlib.suppress(LocalProtocolError):
                self._frames.append(self.ws.send(CloseConnection(code=code, reason=reason)))
            self._shutdown_when_sent = True
            self._sent_all.clear()
        self.sender.kick(self)

    # ----------------------------------------------------------------------------------------- sender side

    def flush(self) -> bool:
        """Send what the socket takes now; False when it is full (wait for writability)."""
        with self._lock:
            while self._frames:
                frame = self._frames[0]
                try:
                    sent = self.sock.send(memoryview(frame)[self._offset:])
                except (BlockingIOError, InterruptedError):
                    return False
                except OSError:
                    self._kill_locked()
                    return True
                self._offset += sent
                if self._offset < len(frame):
                    return False
                self._frames.popleft()
                self._offset = 0
            self._sent_all.set()
            if self._shutdown_when_sent:
                self._kill_locked()
            return True

    def kill(self) -> None:
        with self._lock:
            self._kill_locked()

    def _kill_locked(self) -> None:
        self.dead = True
        self._frames.clear()
        self._sent_all.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # ----------------------------------------------------------------------------------------- reader side

    def run(self, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        self.sock.setblocking(False)
        self.notifier.register(self.connection_id, self)
        try:
            if self.service.connect(self.connection_id, query=query, headers=headers) is None:
                self.close(CLOSE_UNAUTHORIZED, "unauthorized")
            else:
                self._read_loop()
        except Exception:
            log.exception("websocket %s failed", self.connection_id)
        finally:
            self.notifier.unregister(self.connection_id)
            try:
                self.service.disconnect(self.connection_id)
            except Exception:
                log.exception("websocket %s: disconnect failed", self.connection_id)
            self._sent_all.wait(2.0)  # a close frame on its way gets out before the socket goes
            self.sender.forget(self)
            self.kill()

    def _control(self, event: Any) -> None:
        with self._lock:
            if self.dead:
                return
            with contextlib.suppress(LocalProtocolError):
                self._frames.append(self.ws.send(event))
                self._sent_all.clear()
        self.sender.kick(self)

    def _read_loop(self) -> None:
        message = _Message()
        last_heard = time.monotonic()
        pinged = False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while self._closing is None and not self.dead:
            readable = poller.poll(PING_INTERVAL_S / 4 * 1000)
            now = time.monotonic()
            if not readable:
                if now - last_heard > IDLE_TIMEOUT_S:
                    self.close(1001, "idle")
                    return
                if now - last_heard > PING_INTERVAL_S and not pinged:
                    self._control(Ping(payload=b"mc"))
                    pinged = True
                continue
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            if not data:
                return
            last_heard, pinged = now, False
            with self._lock:  # wsproto's state is shared with notify and the sender
                self.ws.receive_data(data)
                events = list(self.ws.events())  # a framing error comes out as a CloseConnection (1002)
            for event in events:
                if not self._handle(event, message):
                    return

    def _handle(self, event: Any, message: _Message) -> bool:
        """One wsproto event; False once the client closed."""
        if isinstance(event, CloseConnection):
            with self._lock:
                answer = self._closing is None
                if answer:
                    self._closing = (event.code, "closed by the client")
                    self._shutdown_when_sent = True
            if answer:
                self._control(event.response())
            return False
        if isinstance(event, Ping):
            self._control(event.response())
        elif isinstance(event, TextMessage | BytesMessage):
            message.add(event)
            if event.message_finished:
                error = message.error()
                if error is not None:
                    self.service.send(self.connection_id, {"type": "error", "message": error})
                else:
                    self.service.message(self.connection_id, message.text())
                message.clear()
        return True


class _Message:
    """A client message arriving in frames: its text, unless it grows past ``MAX_MESSAGE_BYTES`` or is binary."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.too_big = False
        self.binary = False

    def add(self, event: TextMessage | BytesMessage) -> None:
        self.binary = self.binary or isinstance(event, BytesMessage)
        if self.too_big or self.binary:
            return
        chunk = event.data if isinstance(event.data, str) else ""
        self.size += len(chunk)
        if self.size > MAX_MESSAGE_BYTES:
            self.too_big, self.parts = True, []
        else:
            self.parts.append(chunk)

    def error(self) -> str | None:
        if self.binary:
            return "binary messages are not supported"
        if self.too_big:
            return f"message larger than {MAX_MESSAGE_BYTES} bytes"
        return None

    def text(self) -> str:
        return "".join(self.parts)


class FrontRequestHandler(ChaliceRequestHandler):
    server: FrontServer

    def _generic_handle(self) -> None:
        path = urlsplit(self.path).path
        if path.rstrip("/") == WS_PATH:
            self._websocket()
        elif path == "/api" or path.startswith("/api/"):
            super()._generic_handle()
        else:
            self._static(path)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ----------------------------------------------------------------------------------------- websocket

    def _websocket(self) -> None:
        if self.command != "GET" or "websocket" not in self.headers.get("Upgrade", "").lower():
            self._reply(426, json.dumps({"status": 426, "message": "a websocket upgrade is required here"}).encode(),
                        "application/json", {"Upgrade": "websocket", "Connection": "Upgrade"})
            return
        ws = WSConnection(ConnectionType.SERVER)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        try:
            ws.initiate_upgrade_connection(headers, self.path)
            request = next(ws.events())
            if not isinstance(request, Request):
                raise RemoteProtocolError("not a websocket request", event_hint=None)
        except (RemoteProtocolError, StopIteration) as error:
            self._reply(400, json.dumps({"status": 400, "message": f"bad websocket request: {error}"}).encode(),
                        "application/json")
            return
        self.close_connection = True
        self.wfile.write(ws.send(AcceptConnection()))
        self.wfile.flush()
        connection_id = secrets.token_urlsafe(12)
        query = parse_qs(urlsplit(self.path).query)
        LocalWebsocket(self.connection, ws, self.server.websocket, self.server.notifier, self.server.sender,
                       connection_id, queue_size=self.server.send_queue_size).run(query, dict(self.headers.items()))

    # ----------------------------------------------------------------------------------------- static files

    def _static(self, path: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self._reply(405, b'{"status": 405, "message": "method not allowed"}', "application/json",
                        {"Allow": "GET, HEAD"})
            return
        root = self.server.static_dir
        target = _safe_path(root, path)
        if target is not None and target.is_file():
            cache = "public, max-age=31536000, immutable" if "/assets/" in path else "no-cache"
            self._reply(200, target.read_bytes(), mimetypes.guess_type(target.name)[0] or "application/octet-stream",
                        {"Cache-Control": cache})
            return
        if path.startswith("/assets/") or mimetypes.guess_type(path.rsplit("/", 1)[-1])[0] is not None:
            # an asset that is not there (a page path such as /nodes/sim.1 has no known file type: the app's)
            self._reply(404, b"not found\n", "text/plain; charset=utf-8")
            return
        index = root / "index.html"
        if index.is_file():
            self._reply(200, index.read_bytes(), "text/html; charset=utf-8", {"Cache-Control": "no-cache"})
        else:
            self._reply(200, PLACEHOLDER.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-cache"})

    def _reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


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


class FrontServer(ThreadedHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: Any, *, websocket: WebsocketService,
                 notifier: LocalNotifier, static_dir: Path, send_queue_size: int = SEND_QUEUE_SIZE) -> None:
        self.send_queue_size = send_queue_size
        self.sender = Sender()
        self.websocket = websocket
        self.notifier = notifier
        self.static_dir = static_dir
        super().__init__(address, handler)


class LocalFront:
    """The front server: the API app, the websocket service over the local notifier (whose sockets it registers),
    the dashboard. ``serve_forever``/``shutdown`` as ``chalice local``'s server."""

    def __init__(self, app: Chalice, config: Config, host: str, port: int, *, websocket: WebsocketService,
                 notifier: LocalNotifier, static_dir: Path = STATIC_DIR,
                 send_queue_size: int = SEND_QUEUE_SIZE) -> None:
        if not isinstance(app, LocalChalice):  # what ``chalice.local.create_local_server`` does, once
            CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
            app.__class__ = CustomLocalChalice
        self.notifier = notifier
        self.websocket = websocket

        def handler(request: Any, client_address: Any, server: Any) -> FrontRequestHandler:
            return FrontRequestHandler(request, client_address, server, app_object=app, config=config)

        self.server = FrontServer((host, port), handler, websocket=self.websocket, notifier=self.notifier,
                                  static_dir=static_dir, send_queue_size=send_queue_size)
        self.host, self.port = host, int(self.server.server_address[1])

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop accepting, then close every websocket (1001, going away)."""
        self.server.shutdown()
        self.notifier.close_all(1001, "server stopping")
        self.server.server_close()
        time.sleep(0.2)  # the close frames go out
        self.server.sender.stop()
