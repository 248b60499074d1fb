"""The local front over real sockets: websocket clients (the ``websockets`` library) against ``/api/ws`` fed by the
in-process bus, the Chalice app at ``/api/*``, the dashboard's files elsewhere."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.core.model import FieldModel, Kind, event
from chalicelib.core.ports import bus_event
from chalicelib.core.subscriptions import MAX_SUBSCRIPTIONS
from chalicelib.local.front import Limits, LocalFront
from chalicelib.services.websocket import NOTIFY_PATTERN, WebsocketService
from chalicelib.settings import Settings

TOKENS = {"good-token": {"sub": "u1", "username": "admin"}}


class Front:
    def __init__(self, front: LocalFront, bus: LocalEventBus) -> None:
        self.front = front
        self.bus = bus
        self.base = f"http://127.0.0.1:{front.port}"
        self.ws_url = f"ws://127.0.0.1:{front.port}/api/ws"

    def client(self, token: str | None = "good-token", **kwargs: Any) -> ClientConnection:
        url = self.ws_url + (f"?access_token={token}" if token else "")
        return connect(url, open_timeout=5, **kwargs)

    def publish_field(self, field_id: str, value: float, **labels: str) -> None:
        gateway, node, source, key = field_id.split(".")
        record = FieldModel(gateway_id=gateway, node_id=node, source_id=source, field_id=key, labels=labels).record()
        record["current"] = {"value": value}
        self.bus.publish([bus_event(event("updated", Kind.FIELD, record))])


@pytest.fixture
def front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Front]:
    from chalicelib.adapters.connections_memory import MemoryConnectionStore
    from chalicelib.adapters.notifier_local import LocalNotifier
    from chalicelib.bootstrap import Container

    bus = LocalEventBus("thread")
    notifier = LocalNotifier()
    websocket = WebsocketService(MemoryConnectionStore(), notifier, authenticate=TOKENS.get, index_ttl_s=30.0)
    container = Container(Settings(data_dir=tmp_path), repository=MemoryRepository(tmp_path / "repository", 0),
                          metrics=NoMetricStore(), bus=bus, downlink=LocalDownlink(), notifier=notifier,
                          websocket=websocket)
    bus.subscribe("websocket-notify", NOTIFY_PATTERN, websocket.on_event)
    static = tmp_path / "dist"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<html>dashboard</html>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    local = LocalFront(container, "127.0.0.1", 0, static_dir=static, limits=Limits(send_queue_size=8))
    thread = threading.Thread(target=local.serve_forever, daemon=True)
    thread.start()
    try:
        yield Front(local, bus)
    finally:
        local.shutdown()
        bus.close(timeout=5)
        container.close()


def receive(client: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(client.recv(timeout=timeout))


def nothing_more(client: ClientConnection, wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        client.recv(timeout=wait)


def test_a_client_subscribed_to_one_quick_id_gets_its_updates_and_nothing_else(front: Front) -> None:
    with front.client() as one, front.client() as room:
        one.send(json.dumps({"type": "subscribe", "id": "temp", "filter": {"quickIds": ["field:sim.1.1.V_TEMP"]}}))
        assert receive(one) == {"type": "subscribed", "id": "temp"}
        room.send(json.dumps({"type": "subscribe", "id": "kitchen", "filter": {"labels": {"room": "kitchen"}}}))
        assert receive(room) == {"type": "subscribed", "id": "kitchen"}

        front.publish_field("sim.1.1.V_HUM", 40, room="kitchen")
        front.publish_field("sim.1.1.V_TEMP", 21.5)
        front.publish_field("sim.2.1.V_TEMP", 18)

        got = receive(one)
        assert got["type"] == "event" and got["subscriptions"] == ["temp"]
        data = got["data"]
        assert {k: data[k] for k in ("type", "entityType", "entityId", "entityQuickId")} == {
            "type": "updated", "entityType": "field", "entityId": "sim.1.1.V_TEMP",
            "entityQuickId": "field:sim.1.1.V_TEMP"}
        assert data["entity"]["current"]["value"] == 21.5
        nothing_more(one)
        got = receive(room)
        assert got["subscriptions"] == ["kitchen"] and got["data"]["entityId"] == "sim.1.1.V_HUM"
        nothing_more(room)

        one.send(json.dumps({"type": "unsubscribe", "id": "temp"}))
        assert receive(one) == {"type": "unsubscribed", "id": "temp"}
        front.publish_field("sim.1.1.V_TEMP", 22)
        nothing_more(one)


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_an_unauthenticated_connect_is_closed_with_4401(front: Front, token: str | None) -> None:
    with front.client(token) as client, pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert front.front.websocket.store.list_all() == []


def test_token_in_a_cookie_or_header_is_accepted(front: Front) -> None:
    for headers in ({"Cookie": "theme=dark; mc_access_token=good-token"}, {"Authorization": "Bearer good-token"}):
        with connect(front.ws_url, additional_headers=headers, open_timeout=5) as client:
            client.send('{"type":"ping"}')
            assert receive(client) == {"type": "pong"}


def test_bad_messages_get_errors_and_the_connection_survives(front: Front) -> None:
    with front.client() as client:
        for message, needle in (("not json", "not JSON"), ("[1, 2]", "JSON object"), ('{"type":"dance"}', "unknown"),
                                ('{"type":"subscribe","id":"x","filter":{"entityTypes":["nope"]}}', "entityTypes"),
                                ('{"type":"subscribe","filter":{}}', "id must be"),
                                ("x" * 70_000, "larger than")):
            client.send(message)
            reply = receive(client)
            assert reply["type"] == "error" and needle in reply["message"], (message[:40], reply)
        client.send(b"\x00\x01")
        assert "binary" in receive(client)["message"]
        for i in range(MAX_SUBSCRIPTIONS):
            client.send(json.dumps({"type": "subscribe", "id": f"s{i}", "filter": {}}))
            assert receive(client)["type"] == "subscribed"
        client.send(json.dumps({"type": "subscribe", "id": "one-too-many", "filter": {}}))
        assert f"at most {MAX_SUBSCRIPTIONS}" in receive(client)["message"]
        client.send(json.dumps({"type": "subscribe", "id": "s0", "filter": {"entityTypes": ["node"]}}))  # a replace
        assert receive(client) == {"type": "subscribed", "id": "s0"}
        client.send('{"type":"ping"}')
        assert receive(client) == {"type": "pong"}


def test_a_client_that_does_not_read_is_dropped_and_the_others_keep_receiving(front: Front) -> None:
    slow = socket.create_connection(("127.0.0.1", front.front.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"GET /api/ws?access_token=good-token HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert b" 101 " in slow.recv(1024)
    slow.sendall(_masked_text(b'{"type":"subscribe","id":"all","filter":{}}'))
    with front.client() as fast:
        fast.send(json.dumps({"type": "subscribe", "id": "all", "filter": {}}))
        assert receive(fast)["type"] == "subscribed"
        big = "x" * 60_000
        deadline = time.monotonic() + 20
        received = 0
        while front.front.notifier.dropped == 0 and time.monotonic() < deadline:
            front.publish_field("sim.1.1.V_TEMP", 1.0, note=big)
            received += 1
            got = receive(fast)
            while got["type"] != "event":
                got = receive(fast)
        assert front.front.notifier.dropped == 1
        front.publish_field("sim.1.1.V_TEMP", 2.0)
        got = receive(fast)
        assert got["type"] == "event" and got["data"]["entity"]["current"]["value"] == 2.0
    slow.close()


def _masked_text(payload: bytes) -> bytes:
    """One client text frame (clients must mask), for the raw-socket slow client."""
    mask = b"\x01\x02\x03\x04"
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else bytes([0x81, 0xFE]) + len(
        payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def http(front: Front, path: str, method: str = "GET") -> tuple[int, bytes, str]:
    request = urllib.request.Request(front.base + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def test_one_port_serves_the_api_the_dashboard_and_its_routes(front: Front) -> None:
    status, body, _ = http(front, "/api/status")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body, kind = http(front, "/")
    assert status == 200 and b"dashboard" in body and kind.startswith("text/html")
    status, body, _ = http(front, "/dashboards/7")  # the dashboard's own route: index.html
    assert status == 200 and b"dashboard" in body
    for page in ("/nodes/sim.1", "/fields/sim.1.1.V_TEMP"):  # dotted ids are pages too, not missing files
        status, body, _ = http(front, page)
        assert status == 200 and b"dashboard" in body, page
    assert http(front, "/favicon.ico")[0] == 404
    status, body, kind = http(front, "/assets/app.js")
    assert status == 200 and body == b"console.log(1)" and "javascript" in kind
    assert http(front, "/assets/missing.js")[0] == 404
    assert http(front, "/%2e%2e/%2e%2e/app.py")[0] == 404
    assert http(front, "/", method="POST")[0] == 405
    status, body, _ = http(front, "/api/ws")
    assert status == 426


def test_without_a_built_dashboard_a_page_says_how_to_build_it(front: Front, tmp_path: Path) -> None:
    front.front.static_dir = tmp_path / "nothing-here"
    status, body, _ = http(front, "/")
    assert status == 200 and b"npm run build" in body


def _handshake(port: int, token: str = "good-token") -> socket.socket:
    """A raw websocket client that answers nothing (no pongs) once upgraded."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET /api/ws?access_token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head
    return sock


def _frames(sock: socket.socket, timeout: float) -> list[tuple[int, bytes]]:
    """Server frames (opcode, payload) until the close frame or ``timeout``."""
    sock.settimeout(timeout)
    data, frames = b"", []
    while True:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, OSError):
            return frames
        if not chunk:
            return frames
        data += chunk
        while len(data) >= 2:
            size, start = data[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(data[2:4], "big"), 4
            if len(data) < start + size:
                break
            frames.append((data[0] & 0x0F, data[start:start + size]))
            data = data[start + size:]
            if frames[-1][0] == 0x8:
                return frames


def _quick_front(tmp_path: Path, limits: Limits) -> Iterator[LocalFront]:
    from chalicelib.adapters.connections_memory import MemoryConnectionStore
    from chalicelib.adapters.notifier_local import LocalNotifier
    from chalicelib.bootstrap import Container

    notifier = LocalNotifier()
    websocket = WebsocketService(MemoryConnectionStore(), notifier, authenticate=TOKENS.get, index_ttl_s=30.0)
    container = Container(Settings(data_dir=tmp_path), repository=MemoryRepository(None, 0), metrics=NoMetricStore(),
                          bus=LocalEventBus("sync"), downlink=LocalDownlink(), notifier=notifier, websocket=websocket)
    local = LocalFront(container, "127.0.0.1", 0, static_dir=tmp_path, limits=limits)
    thread = threading.Thread(target=local.serve_forever, daemon=True)
    thread.start()
    yield local
    local.shutdown()
    container.close()


@pytest.fixture
def quick_front(tmp_path: Path) -> Iterator[LocalFront]:
    """A front pinging every 0.3 s that gives up on a silent client after 1 s."""
    yield from _quick_front(tmp_path, Limits(ping_interval_s=0.3, idle_timeout_s=1.0))


@pytest.fixture
def impatient_front(tmp_path: Path) -> Iterator[LocalFront]:
    """A front that waits 1 s for a full socket (and pings as ``make run`` does)."""
    yield from _quick_front(tmp_path, Limits(send_timeout_s=1.0, send_queue_size=100_000,
                                             send_queue_bytes=100 * 1024 * 1024))


def _gone(front: LocalFront, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while front.websocket.store.list_all() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not front.websocket.store.list_all()


def test_a_silent_client_is_pinged_then_closed_as_idle(quick_front: LocalFront) -> None:
    with _handshake(quick_front.port) as sock:
        frames = _frames(sock, 5)
    assert frames[0][0] == 0x9  # a ping
    opcode, payload = frames[-1]
    assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1001 and payload[2:] == b"idle"
    assert _gone(quick_front)


def test_a_client_that_answers_pings_stays_and_every_socket_closes_1001_on_shutdown(quick_front: LocalFront) -> None:
    with connect(f"ws://127.0.0.1:{quick_front.port}/api/ws?access_token=good-token", open_timeout=5) as client:
        time.sleep(1.5)  # pings answered by the client library: not idle
        client.send('{"type":"ping"}')
        assert receive(client) == {"type": "pong"}
        stopping = threading.Thread(target=quick_front.shutdown)
        stopping.start()
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=5)
        stopping.join(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


def test_a_socket_that_stays_full_is_cut(impatient_front: LocalFront) -> None:
    """A client that stops reading, with room in its queue: once its socket is full, a send waits
    ``send_timeout_s`` (here 1 s), then the connection is cut and forgotten."""
    front = impatient_front
    with _handshake(front.port) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(_masked_text(b'{"type":"subscribe","id":"all","filter":{}}'))
        assert _frames(slow, 0.5)  # "subscribed"
        record = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V", labels={"n": "x" * 60_000})
        started = time.monotonic()
        for _ in range(200):  # 12 MB: more than any socket buffer holds
            front.websocket.notify([bus_event(event("updated", Kind.FIELD, record.record())).detail])
        assert _gone(front, 10)
        assert front.notifier.dropped == 0 and 1.0 <= time.monotonic() - started < 8


def test_the_token_of_a_websocket_url_stays_out_of_the_logs(front: Front, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), front.client("good-token") as client:
        client.send('{"type":"ping"}')
        assert receive(client) == {"type": "pong"}
    said = [record.getMessage() for record in caplog.records if not record.name.startswith("websockets")]
    assert any("WebSocket /api/ws?access_token=***" in line for line in said)
    assert not any("good-token" in line for line in said)


def test_a_client_that_does_not_read_large_events_is_dropped_by_the_bytes_it_holds(tmp_path: Path) -> None:
    """A queue of 1,000 messages would hold 60 MB of 60 kB events: 1 MB of them is the bound here."""
    for front in _quick_front(tmp_path, Limits(send_queue_size=1000, send_queue_bytes=1024 * 1024)):
        with _handshake(front.port) as slow:
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(_masked_text(b'{"type":"subscribe","id":"all","filter":{}}'))
            assert _frames(slow, 0.5)
            record = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V", labels={"n": "x" * 60_000})
            for _ in range(200):  # 12 MB
                front.websocket.notify([bus_event(event("updated", Kind.FIELD, record.record())).detail])
                if front.notifier.dropped:
                    break
            assert front.notifier.dropped == 1 and _gone(front)
