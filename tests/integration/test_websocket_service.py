"""The websocket handler code path on its own (memory store, a recording notifier): where the token is read, what a
connection keeps, who gets which event, and what never goes out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.connections_memory import MemoryConnectionStore
from chalicelib.bootstrap import Container
from chalicelib.core.ports import Gone
from chalicelib.functions.websocket import endpoint_from_event
from chalicelib.services.websocket import WebsocketService, scrub, token_from
from chalicelib.settings import Settings


class Recorder:
    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.broken: set[str] = set()

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise Gone(connection_id)
        if connection_id in self.broken:
            raise ConnectionError("network trouble")
        self.sent.setdefault(connection_id, []).append(json.loads(data))

    def events(self, connection_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent.get(connection_id, []) if m["type"] == "event"]


NOW = 1_900_000_000.0


def service(tokens: dict[str, dict[str, Any]] | None = None) -> tuple[WebsocketService, Recorder]:
    recorder = Recorder()
    tokens = tokens or {"t": {"type": "user", "userId": "u1", "username": "admin", "exp": NOW + 3600,
                              "password": "never-kept"}}
    return WebsocketService(MemoryConnectionStore(), recorder, authenticate=tokens.get, clock=lambda: NOW), recorder


def field(field_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "updated", "entityType": "field", "entityId": field_id, "entityQuickId": f"field:{field_id}",
            "entity": {"id": field_id, "labels": {}, **extra}}


def test_the_token_comes_from_header_query_or_cookie() -> None:
    assert token_from({"access_token": "q"}, {"authorization": "Bearer h"}) == "h"
    assert token_from({"access_token": ["q"]}, {"Cookie": "mc_access_token=c"}) == "q"
    assert token_from({}, {"Cookie": "a=b; mc_access_token=c"}) == "c"
    assert token_from(None, {"Authorization": "Basic xyz"}) is None
    assert token_from(None, {"Cookie": "mc_access_token=\"bad"}) is None
    assert token_from(None, None) is None


def test_a_connection_keeps_who_it_is_but_never_the_token_or_secrets() -> None:
    ws, _ = service()
    assert ws.connect("c1", query={"access_token": "nope"}) is None
    record = ws.connect("c1", query={"access_token": "t"})
    assert record is not None
    assert record["principal"] == {"type": "user", "userId": "u1", "username": "admin", "exp": NOW + 3600}
    assert record["expiresAt"] == int(NOW) + 2 * 3600 + 600
    assert '"t"' not in json.dumps(ws.store.list_all()) and "never-kept" not in json.dumps(ws.store.list_all())


def test_the_containers_websocket_asks_the_auth_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    def principal_from_token(token: str) -> dict[str, Any] | None:
        calls.append(token)
        if token == "boom":
            raise RuntimeError("store down")
        return {"type": "user", "userId": "u9"} if token == "ok" else None

    container = Container(Settings(data_dir=tmp_path), notifier=Recorder())
    monkeypatch.setattr(container.auth, "principal_from_token", principal_from_token)
    ws = container.websocket
    assert ws.connect("a", query={"access_token": "ok"}) is not None
    assert ws.connect("b", query={"access_token": "bad"}) is None
    assert ws.connect("c", query={"access_token": "boom"}) is None  # refused, not crashed
    assert calls == ["ok", "bad", "boom"]


def test_notify_reaches_only_matching_subscriptions_and_drops_gone_connections() -> None:
    ws, sent = service()
    for connection_id in ("a", "b", "gone", "broken"):
        ws.connect(connection_id, query={"access_token": "t"})
    ws.message("a", json.dumps({"type": "subscribe", "id": "temp", "filter": {"quickIds": ["field:g.1.1.T"]}}))
    ws.message("a", json.dumps({"type": "subscribe", "id": "node", "filter": {"quickIds": ["node:g.1"]}}))
    for connection_id in ("b", "gone", "broken"):
        ws.message(connection_id, json.dumps({"type": "subscribe", "id": "all", "filter": {}}))
    sent.gone.add("gone")
    sent.broken.add("broken")
    result = ws.notify([field("g.1.1.T", current={"value": 1}), field("g.2.1.T"), "not an event"])  # type: ignore[list-item]
    assert result.events == 3 and result.gone == ["gone"] and result.failed == 2
    assert [(m["subscriptions"], m["data"]["entityId"]) for m in sent.events("a")] == [(["temp", "node"], "g.1.1.T")]
    assert [m["data"]["entityId"] for m in sent.events("b")] == ["g.1.1.T", "g.2.1.T"]
    assert ws.store.get("gone") is None and ws.store.get("broken") is not None


def test_a_connection_whose_token_expired_gets_no_more_events() -> None:
    ws, sent = service({"old": {"type": "user", "userId": "u", "exp": NOW - 1}, "t": {"type": "user", "exp": None}})
    for connection_id, token in (("old", "old"), ("new", "t")):
        ws.connect(connection_id, query={"access_token": token})
        ws.message(connection_id, json.dumps({"type": "subscribe", "id": "all", "filter": {}}))
    ws.notify([field("g.1.1.T")])
    assert sent.events("old") == [] and len(sent.events("new")) == 1


def test_private_kinds_never_go_out_and_secret_looking_keys_are_dropped() -> None:
    ws, sent = service()
    ws.connect("a", query={"access_token": "t"})
    ws.message("a", json.dumps({"type": "subscribe", "id": "all", "filter": {}}))
    ws.notify([{"type": "updated", "entityType": "user", "entityId": "admin", "entity": {"password": "h"}},
               {"type": "updated", "entityType": "handler", "entityId": "h1",
                "entity": {"id": "h1", "spec": {"url": "x"}, "apiToken": "s3cret", "clientSecret": "s"}}])
    [only] = sent.events("a")
    assert only["data"]["entityType"] == "handler" and "s3cret" not in json.dumps(only)
    assert only["data"]["entity"] == {"id": "h1", "spec": {"url": "x"}}
    assert scrub(field("g.1.1.T", token="field values are not touched"))["entity"]["token"]


def test_the_management_endpoint_comes_from_the_event() -> None:
    event = {"requestContext": {"apiId": "abc", "stage": "api"}}
    assert endpoint_from_event(event, "eu-west-1") == "https://abc.execute-api.eu-west-1.amazonaws.com/api"
    assert endpoint_from_event(event, "cn-north-1") == "https://abc.execute-api.cn-north-1.amazonaws.com.cn/api"
    assert endpoint_from_event({}, "eu-west-1") is None


def test_many_connections_and_subscriptions_stay_fast_to_match() -> None:
    ws, sent = service()
    for i in range(500):
        ws.connect(f"c{i}", query={"access_token": "t"})
        ws.message(f"c{i}", json.dumps({"type": "subscribe", "id": "s",
                                        "filter": {"quickIds": [f"field:g.{i}.1.T"]}}))
    import time

    started = time.perf_counter()
    for i in range(500):
        ws.notify([field(f"g.{i}.1.T")])
    elapsed = time.perf_counter() - started
    assert all(len(sent.events(f"c{i}")) == 1 for i in range(500))
    assert elapsed < 2.0, elapsed  # an index lookup per event, not a scan of 500 filters
