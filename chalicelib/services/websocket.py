"""The websocket service: one code path for API Gateway (``functions/websocket.py`` behind ``app.py``'s ``on_ws_*``
handlers, and the bus-fed notify function) and the local server (``chalicelib/local/front.py``).

* connect: the client's token (``?access_token=``, cookie ``mc_access_token`` or ``Authorization: Bearer``)
  must name a principal (``services.auth.AuthService``), or the connection is refused.
* messages (JSON): ``subscribe`` ``{"type", "id", "filter"}`` (``core.subscriptions``), ``unsubscribe``
  ``{"type", "id"}``, ``ping``. Answers: ``subscribed``, ``unsubscribed``, ``pong``, and ``error`` for bad
  JSON, unknown types, bad filters and limits; the connection stays open.
* notify: domain events (the bus's ``detail``) → ``{"type": "event", "subscriptions": [ids], "data": event}``
  to each connection with a matching subscription, ``data`` in the reference's shape. Gone connections (410,
  or dropped locally for falling behind) are removed.
* the reference's stream: a connection that has not subscribed (nor unsubscribed) gets every event as the
  reference sends it, ``{"type": "event", "data": event}`` (MyController v2's console never subscribes). It is a
  subscription of its own, ``STREAM``, held from connect (``?stream=none`` opts out at once) until the first
  ``subscribe`` or ``unsubscribe``, sent from ``STREAM_GRACE_S`` after connect on: no other code path, and a
  connection costs notify posts only while it streams.
* revalidate: a connection keeps the principal it was opened with (its role and session epoch, never the
  token). ``revalidate`` asks the auth service (``check_sessions``) whether each may still act and closes
  (``Notifier.close``: code 4401 locally, ``delete_connection`` in AWS) those that may not: logged out, password
  or role changed, user or token deleted, expired. It runs at once when a revocation (``session.revoked``, from
  ``AuthService``) or a restore (``backup.restored``) reaches notify through the bus, and otherwise at most every
  ``revalidate_s`` on notify, and every ``revalidate_s`` from a sweeper thread where the connections live in this
  process (the local stack): a revoked session's sockets close within seconds, whichever process revoked it.

Every answer goes out through the ``Notifier`` port (API Gateway cannot answer on the route itself without a
route response), so AWS and the local server behave the same.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final

from ..core.model import DEVICE_KINDS
from ..core.ports import EVENT_SOURCE, BusEvent, ConnectionStore, Gone, Notifier
from ..core.subscriptions import (
    MAX_SUBSCRIPTIONS,
    SubscriptionError,
    SubscriptionIndex,
    check_subscription_id,
    parse_filter,
)
from ..observability import SERVICE, Logger
from .auth import REVOCATION_SOURCE

logger = Logger(service=SERVICE, child=True)

MAX_MESSAGE_BYTES: Final = 64 * 1024
"""Largest client message accepted (API Gateway's own limit is 128 KB)."""
CONNECTION_TTL_S: Final = 2 * 3600 + 600
"""API Gateway closes a websocket after two hours; a record older than that (plus margin) is stale."""
NOTIFY_PATTERN: Final[dict[str, Any]] = {"source": [EVENT_SOURCE, REVOCATION_SOURCE]}
"""Every domain event goes to notify (the EventBridge rule in infra/, the local bus subscription), and every
revocation of sessions (which closes their connections)."""
COOKIE_NAME: Final = "mc_access_token"
REFERENCE_COOKIE: Final = "__mc_auth"
"""MyController v2's cookie name, read too (a client of the reference may set it itself)."""
QUERY_PARAMETER: Final = "access_token"
PRINCIPAL_KEYS: Final = ("type", "userId", "username", "tokenId", "sub", "role", "epoch", "exp")
"""What of a principal a connection keeps (never the token): enough to re-check it (``revalidate``)."""
CLOSE_SESSION_ENDED: Final = 4401
"""The close code of a connection whose session ended (as for a refused connect: the console logs in again)."""
REVALIDATE_EVENTS: Final = frozenset({("session", "revoked"), ("backup", "restored")})
"""``(entityType, type)`` of the events that make notify re-check every connection at once (never sent out)."""
STREAM: Final = "*"
"""The subscription a connection holds until it subscribes: every event, in the reference's envelope. Its id is one
no client can name (``check_subscription_id`` refuses ``*``)."""
STREAM_GRACE_S: Final = 2.0
"""The stream starts this long after connect: a client that subscribes on open (this project's console, ``bench/ws.py``)
never sees a frame of it; MyController v2's console loads its pages over REST meanwhile."""
STREAM_OFF: Final = frozenset({"none", "off", "0", "false", "no"})
"""``?stream=`` values that open a connection without the reference's stream (a client that will subscribe)."""
_DEVICE_TYPES: Final = frozenset(kind.value for kind in DEVICE_KINDS)
_SECRET_KEY: Final = re.compile(r"password|secret|hash|token|credential", re.IGNORECASE)

Authenticator = Callable[[str], "dict[str, Any] | None"]
SessionCheck = Callable[[list[Mapping[str, Any]]], "list[str | None]"]
"""For each connection's principal, why it may no longer act, or None (``AuthService.session_problems``)."""


def token_from(query: Mapping[str, Any] | None, headers: Mapping[str, Any] | None) -> str | None:
    """The access token of a connect request: ``Authorization: Bearer``, ``?access_token=``, then the cookie."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    authorization = lowered.get("authorization")
    if isinstance(authorization, str) and authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    value = (query or {}).get(QUERY_PARAMETER)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str) and value:
        return value
    cookie_header = lowered.get("cookie")
    if isinstance(cookie_header, str) and (COOKIE_NAME in cookie_header or REFERENCE_COOKIE in cookie_header):
        try:
            cookie: SimpleCookie = SimpleCookie(cookie_header)
        except CookieError:
            return None
        for name in (COOKIE_NAME, REFERENCE_COOKIE):
            morsel = cookie.get(name)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def scrub(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as clients may see it: non-device entities lose keys that look like secrets (a second fence:
    the API already publishes redacted records)."""
    entity = event.get("entity")
    if event.get("entityType") in _DEVICE_TYPES or not isinstance(entity, dict):
        return dict(event)
    return {**event, "entity": {k: v for k, v in entity.items() if not _SECRET_KEY.search(k)}}


@dataclass(slots=True)
class NotifyResult:
    events: int = 0
    posted: int = 0
    gone: list[str] = field(default_factory=list)
    failed: int = 0


def _live(connection: Mapping[str, Any], now: int) -> bool:
    """Not past API Gateway's lifetime, and its token not expired (a connection outliving its token gets no more
    events; the dashboard reconnects with a fresh one)."""
    if int(connection.get("expiresAt") or now + 1) <= now:
        return False
    exp = (connection.get("principal") or {}).get("exp")
    return not (isinstance(exp, int | float) and exp <= now)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


class Audience:
    """Whether some live websocket connection wants a bus event (``detail``): what a publisher asks so that the
    notifier runs only for what somebody watches (``core/bus_packing.py``). Revocations and restores always reach
    it (they close sockets). The subscription index is built from the connections at most every ``ttl_s``, so a
    new subscription is served within that time; with nobody connected the answer is always no."""

    def __init__(self, store: ConnectionStore, *, ttl_s: float, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._index: SubscriptionIndex | None = None
        self._built_at = 0.0

    def __call__(self, detail: Mapping[str, Any]) -> bool:
        if (detail.get("entityType"), detail.get("type")) in REVALIDATE_EVENTS:
            return True
        index = self.index()
        return index.size > 0 and bool(index.match(detail))

    def index(self) -> SubscriptionIndex:
        with self._lock:
            if self._index is not None and self.monotonic() - self._built_at < self.ttl_s:
                return self._index
        now = int(self.clock())
        index = SubscriptionIndex.build((str(c["connectionId"]), c.get("subscriptions") or {})
                                        for c in self.store.list_all() if _live(c, now))
        with self._lock:
            self._index, self._built_at = index, self.monotonic()
        return index


class WebsocketService:
    """Connect, message, disconnect and notify over a ``ConnectionStore`` and a ``Notifier``.

    Notify matches events against a ``SubscriptionIndex`` built from the store. Changes made through this
    service rebuild it on the next notify; ``index_ttl_s`` also bounds how long it is trusted, for when other
    processes change the store (Lambda: connect and notify run in different containers). ``None``: only this
    service changes the store (the local stack).
    """

    def __init__(self, store: ConnectionStore, notifier: Notifier, *, authenticate: Authenticator,
                 index_ttl_s: float | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, check_sessions: SessionCheck | None = None,
                 revalidate_s: float = 2.0, sweep: bool = False) -> None:
        self.store = store
        self.notifier = notifier
        self.authenticate = authenticate
        """Who a token stands for (``AuthService.principal_or_none``), or ``None``: refused."""
        self.index_ttl_s = index_ttl_s
        self.clock = clock
        self.monotonic = monotonic
        self.check_sessions = check_sessions
        """Whether open connections may still act; None: they are never re-checked (tests with fake tokens)."""
        self.revalidate_s = revalidate_s
        self.sweep = sweep
        """Re-check from a thread of this service every ``revalidate_s`` (the connections live in this process)."""
        self._lock = threading.Lock()
        self._generation = 0
        self._index: SubscriptionIndex | None = None
        self._index_generation = -1
        self._index_at = 0.0
        self._streams: dict[str, float] = {}
        """Streaming connections (``STREAM``) and when their stream starts, from the last index build."""
        self._checked_at = float("-inf")
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

    # ----------------------------------------------------------------------------------------- connections

    def connect(self, connection_id: str, *, query: Mapping[str, Any] | None = None,
                headers: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored connection, or ``None`` when refused (no token, or one that names nobody)."""
        token = token_from(query, headers)
        if not token:
            logger.info("websocket connect refused: no token", extra={"connection_id": connection_id})
            return None
        principal = self.authenticate(token)
        if not principal:
            logger.info("websocket connect refused: bad token", extra={"connection_id": connection_id})
            return None
        now = self.clock()
        stream = (query or {}).get("stream")
        if isinstance(stream, list):
            stream = stream[-1] if stream else None
        streams = not (isinstance(stream, str) and stream.strip().lower() in STREAM_OFF)
        record = {
            "connectionId": connection_id,
            "principal": {k: principal[k] for k in PRINCIPAL_KEYS if k in principal},
            "connectedAt": int(now * 1000),
            "expiresAt": int(now) + CONNECTION_TTL_S,
            "subscriptions": {STREAM: {}} if streams else {},
        }
        self.store.put(record)
        self._invalidate()
        if self.sweep and self.check_sessions is not None:
            self._start_sweeper()
        return record

    def disconnect(self, connection_id: str) -> None:
        self.store.delete(connection_id)
        self._invalidate()

    # ----------------------------------------------------------------------------------------- messages

    def message(self, connection_id: str, body: str | bytes | None) -> dict[str, Any]:
        """Handle one client message; the answer is sent to the client and returned."""
        reply = self._answer(connection_id, body)
        self.send(connection_id, reply)
        return reply

    def _answer(self, connection_id: str, body: str | bytes | None) -> dict[str, Any]:
        if body is None:
            return {"type": "error", "message": "empty message"}
        size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
        if size > MAX_MESSAGE_BYTES:
            return {"type": "error", "message": f"message larger than {MAX_MESSAGE_BYTES} bytes"}
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return {"type": "error", "message": "not JSON"}
        if not isinstance(message, dict):
            return {"type": "error", "message": "a message is a JSON object with a type"}
        kind = message.get("type")
        if kind == "ping":
            return {"type": "pong"}
        if kind not in ("subscribe", "unsubscribe"):
            return {"type": "error", "message": f"unknown message type {str(kind)[:40]!r}; "
                                                "one of subscribe, unsubscribe, ping"}
        raw_id = message.get("id")
        try:
            subscription_id = check_subscription_id(raw_id)
            connection = self.store.get(connection_id)
            if connection is not None and STREAM in (connection.get("subscriptions") or {}):
                self.store.remove_subscription(connection_id, STREAM)  # it speaks our protocol: no more stream
                self._invalidate()
            if kind == "unsubscribe":
                self.store.remove_subscription(connection_id, subscription_id)
                self._invalidate()
                return {"type": "unsubscribed", "id": subscription_id}
            parsed = parse_filter(message.get("filter"))
            if connection is None:
                raise SubscriptionError("unknown connection; reconnect")
            held = {k: v for k, v in (connection.get("subscriptions") or {}).items() if k != STREAM}
            if subscription_id not in held and len(held) >= MAX_SUBSCRIPTIONS:
                raise SubscriptionError(f"at most {MAX_SUBSCRIPTIONS} subscriptions a connection")
            data = parsed.model_dump(mode="json", exclude_none=True)
            if not self.store.set_subscription(connection_id, subscription_id, data):
                raise SubscriptionError("unknown connection; reconnect")
        except SubscriptionError as error:
            reply: dict[str, Any] = {"type": "error", "message": str(error)}
            if isinstance(raw_id, str) and len(raw_id) <= 64:
                reply["id"] = raw_id
            return reply
        self._invalidate()
        return {"type": "subscribed", "id": subscription_id}

    def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """Post one message; a gone connection is removed (False)."""
        try:
            self.notifier.post(connection_id, _dumps(message).encode())
        except Gone:
            self.disconnect(connection_id)
            return False
        return True

    # ----------------------------------------------------------------------------------------- notify

    def notify(self, events: Iterable[Mapping[str, Any]]) -> NotifyResult:
        """Push each event to the connections that subscribed to it. Never raises for one client's failure."""
        events = list(events)
        force = any(isinstance(e, Mapping) and (e.get("entityType"), e.get("type")) in REVALIDATE_EVENTS
                    for e in events)
        self._revalidate_quietly(force=force)
        index = self.index()
        streams = self._streams
        now = self.clock()
        result = NotifyResult()
        gone: set[str] = set()
        for event in events:
            result.events += 1
            if not isinstance(event, Mapping) or event.get("entityType") == "session":
                continue
            targets = index.match(event)
            if not targets:
                continue
            data = _dumps(scrub(event))
            for connection_id, subscription_ids in targets.items():
                if connection_id in gone:
                    continue
                if subscription_ids == [STREAM]:  # the reference's envelope, as its console reads it
                    if now < streams.get(connection_id, 0.0):
                        continue  # its first seconds: a client that subscribes is not sent a stream meanwhile
                    payload = f'{{"type":"event","data":{data}}}'.encode()
                else:
                    payload = f'{{"type":"event","subscriptions":{_dumps(subscription_ids)},"data":{data}}}'.encode()
                try:
                    self.notifier.post(connection_id, payload)
                    result.posted += 1
                except Gone:
                    gone.add(connection_id)
                except Exception as error:  # one client's trouble is not the others'
                    result.failed += 1
                    logger.warning("websocket post failed", extra={"connection_id": connection_id,
                                                                   "reason": f"{type(error).__name__}: {error}"})
        for connection_id in gone:
            try:
                self.store.delete(connection_id)
            except Exception:
                logger.exception("websocket: could not remove a gone connection",
                                 extra={"connection_id": connection_id})
        if gone:
            result.gone = sorted(gone)
            self._invalidate()
        return result

    def on_event(self, event: BusEvent) -> None:
        """A bus subscriber (the local stack): one event, notified at once."""
        self.notify([event.detail])

    # ----------------------------------------------------------------------------------------- sessions

    def revalidate(self, *, force: bool = False) -> list[str]:
        """Close the connections whose principal may no longer act; the ids closed. Unless ``force``d, at most
        once every ``revalidate_s`` (one batch of reads for all connections)."""
        if self.check_sessions is None:
            return []
        with self._lock:
            now = self.monotonic()
            if not force and now - self._checked_at < self.revalidate_s:
                return []
            self._checked_at = now
        connections = self.store.list_all()
        if not connections:
            return []
        problems = self.check_sessions([dict(c.get("principal") or {}) for c in connections])
        closed = []
        for connection, problem in zip(connections, problems, strict=True):
            if problem is not None:
                connection_id = str(connection["connectionId"])
                self.close(connection_id, problem)
                closed.append(connection_id)
        return closed

    def _revalidate_quietly(self, *, force: bool) -> None:
        try:
            self.revalidate(force=force)
        except Exception:  # a failing store must not stop events; the next check tries again
            logger.exception("websocket: re-checking sessions failed")

    def close(self, connection_id: str, reason: str) -> None:
        """End one connection whose session ended: the client is told why (locally), the record removed."""
        logger.info("websocket closed: session ended", extra={"connection_id": connection_id, "reason": reason})
        try:
            self.notifier.close(connection_id, CLOSE_SESSION_ENDED, f"session ended: {reason}"[:120])
        except Gone:
            pass
        except Exception as error:
            logger.warning("websocket close failed", extra={"connection_id": connection_id,
                                                            "reason": f"{type(error).__name__}: {error}"})
        self.store.delete(connection_id)
        self._invalidate()

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeper is not None or self._stop.is_set():
                return
            self._sweeper = threading.Thread(target=self._sweep, name="ws-sessions", daemon=True)
            sweeper = self._sweeper
        sweeper.start()

    def _sweep(self) -> None:
        while not self._stop.wait(self.revalidate_s):
            self._revalidate_quietly(force=False)

    def stop(self) -> None:
        """Stop the sweeper (the process is closing)."""
        self._stop.set()
        sweeper = self._sweeper
        if sweeper is not None:
            sweeper.join(timeout=5)

    def index(self) -> SubscriptionIndex:
        """The subscription index, rebuilt when this service changed the store or the TTL ran out."""
        with self._lock:
            generation = self._generation
            index = self._index
            fresh = (index is not None and self._index_generation == generation
                     and (self.index_ttl_s is None or self.monotonic() - self._index_at < self.index_ttl_s))
        if fresh and index is not None:
            return index
        now = int(self.clock())
        connections = [c for c in self.store.list_all() if _live(c, now)]
        index = SubscriptionIndex.build((str(c["connectionId"]), c.get("subscriptions") or {}) for c in connections)
        streams = {str(c["connectionId"]): int(c.get("connectedAt") or 0) / 1000 + STREAM_GRACE_S
                   for c in connections if STREAM in (c.get("subscriptions") or {})}
        with self._lock:
            if self._generation == generation:
                self._index, self._index_generation, self._index_at = index, generation, self.monotonic()
                self._streams = streams
        return index

    def _invalidate(self) -> None:
        with self._lock:
            self._generation += 1
