"""MyController v2's web console, replayed: every call its pages make (recorded from its source as shapes in
``tests/fixtures/reference/console_calls.json``), as a browser makes them (the cookie only, its header, ``filter``
and ``sortBy`` as JSON, arrays as repeated keys), against the API over each repository (memory, SQLite, DynamoDB on
moto). Each call must answer the status the console expects and carry every key it reads.

And the reference's live updates: a websocket that never subscribes, opened with the cookie, gets every event in the
reference's envelope."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.api_helpers import ADMIN_PASSWORD, Api

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "console_calls.json"
CALLS: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["calls"]
_MISSING: Any = object()


def key_path(value: Any, path: str) -> Any:
    """The value at a dotted path; quick ids (``field:gw.1.1.V``) are one key of an answer, matched whole first."""
    if not path:
        return value
    if isinstance(value, dict):
        for key in sorted(value, key=len, reverse=True):  # the longest key that prefixes the path
            if path == key or path.startswith(key + "."):
                return key_path(value[key], path[len(key) + 1:])
        return _MISSING
    if isinstance(value, list):
        head, _, rest = path.partition(".")
        if head.isdigit() and int(head) < len(value):
            return key_path(value[int(head)], rest)
    return _MISSING


class Console:
    """A browser session of the reference console: the cookie login set, nothing else."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cookie = ""
        self.saved: dict[str, Any] = {"ADMIN_PASSWORD": ADMIN_PASSWORD}

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            for name, saved in self.saved.items():
                if value == "${" + name + "}":
                    return saved
                value = value.replace("${" + name + "}", str(saved))
            return value
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        return value

    def send(self, entry: dict[str, Any]) -> tuple[int, Any, dict[str, Any]]:
        path = self.fill(entry["path"])
        query = self.fill(entry.get("query") or {})
        if query:
            flat = {key: json.dumps(value) if key in ("filter", "sortBy") else value for key, value in query.items()}
            path += "?" + urlencode(flat, doseq=True)
        headers = {"X-Auth-Type-Browser-UI": "1", "Accept": "application/json, text/plain, */*"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if "multipart" in entry:
            boundary = uuid.uuid4().hex
            part = entry["multipart"]["file"]
            disposition = f"form-data; name=\"file\"; filename=\"{part['filename']}\""
            body = (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n{part['content']}\r\n--{boundary}--\r\n").encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        else:
            body = b"" if "body" not in entry else json.dumps(self.fill(entry["body"])).encode()
            headers["Content-Type"] = "application/json"
        response = self.api.http.request(entry["method"], path, headers=headers, body=body)
        text = response.body.decode() if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return response.status_code, data, dict(response.headers)

    def replay(self, index: int, entry: dict[str, Any]) -> None:
        expect = entry["expect"]
        until = entry.get("until")
        for _ in range(100):
            status, data, headers = self.send(entry)
            if until is None:
                break
            target = until if isinstance(until, dict) else {"path": until}
            value = key_path(data, target["path"])
            if status == 200 and value is not _MISSING and ("equals" not in target or value == target["equals"]):
                break
            time.sleep(0.05)
        where = f"call {index} {entry['route']} ({entry['method']} {entry['path']})"
        assert status == expect["status"], (where, status, data)
        for path in expect["reads"]:
            assert key_path(data, path) is not _MISSING, (where, "reads", path, data)
        cookies = headers.get("Set-Cookie")
        for line in cookies if isinstance(cookies, list) else [cookies] if cookies else []:
            jar: SimpleCookie = SimpleCookie(line)
            for name, morsel in jar.items():
                if name == "mc_access_token" and morsel.value:  # a cleared cookie is kept: the next call shows
                    self.cookie = f"{name}={morsel.value}"     # that its token no longer works
        for name, path in (entry.get("save") or {}).items():
            self.saved[name] = key_path(data, path)


def test_every_call_of_the_reference_console_answers_as_it_expects(api: Api) -> None:
    console = Console(api)
    for index, entry in enumerate(CALLS):
        console.replay(index, entry)


def test_the_fixture_covers_the_console() -> None:
    routes = {entry["route"] for entry in CALLS}
    assert len(routes) >= 95 and all(route.split(" ")[0] in ("GET", "POST", "DELETE") for route in routes)
    assert {"GET /api/mc_auth/sign_out", "POST /api/settings", "GET /api/restore/run",
            "GET /api/gateway-sleeping-queue"} <= routes


# --------------------------------------------------------------------------------------------- live updates


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    import threading

    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.connections_memory import MemoryConnectionStore
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_none import NoMetricStore
    from chalicelib.adapters.notifier_local import LocalNotifier
    from chalicelib.adapters.repository_memory import MemoryRepository
    from chalicelib.bootstrap import Container
    from chalicelib.local.front import LocalFront
    from chalicelib.services.websocket import NOTIFY_PATTERN, WebsocketService
    from chalicelib.settings import Settings

    bus = LocalEventBus("thread")
    notifier = LocalNotifier()
    websocket = WebsocketService(MemoryConnectionStore(), notifier, authenticate={"cookie-token": {"sub": "u"}}.get)
    container = Container(Settings(data_dir=tmp_path), repository=MemoryRepository(tmp_path / "repository", 0),
                          metrics=NoMetricStore(), bus=bus, downlink=LocalDownlink(), notifier=notifier,
                          websocket=websocket)
    bus.subscribe("websocket-notify", NOTIFY_PATTERN, websocket.on_event)
    local = LocalFront(container, "127.0.0.1", 0)
    thread = threading.Thread(target=local.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{local.port}/api/ws", bus
    finally:
        local.shutdown()
        bus.close(timeout=5)
        container.close()


def test_a_console_that_never_subscribes_gets_every_event_in_the_reference_envelope(front: tuple[str, Any]) -> None:
    from websockets.sync.client import connect

    from chalicelib.core.model import FieldModel, Kind, event
    from chalicelib.core.ports import bus_event
    from chalicelib.services.websocket import STREAM_GRACE_S

    url, bus = front
    field = FieldModel(gateway_id="gw1", node_id="1", source_id="2", field_id="V_TEMP").record()
    with connect(url, additional_headers={"Cookie": "mc_access_token=cookie-token"}, open_timeout=5) as console:
        time.sleep(STREAM_GRACE_S + 0.2)
        bus.publish([bus_event(event("updated", Kind.FIELD, {**field, "current": {"value": 21.5}}))])
        frame = json.loads(console.recv(timeout=5))
    assert set(frame) == {"type", "data"} and frame["type"] == "event"
    assert frame["data"]["entityQuickId"] == "field:gw1.1.2.V_TEMP"
    assert frame["data"]["entity"]["current"]["value"] == 21.5
