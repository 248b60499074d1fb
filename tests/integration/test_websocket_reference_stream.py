"""The websocket's two protocols: a connection that never subscribes gets the reference's stream (every event as
``{"type": "event", "data": ...}``, as MyController v2's console reads it); the first subscribe or unsubscribe ends
it; ``?stream=none`` opts out at connect; and the cookie of the reference (``__mc_auth``) names a token too."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.connections_memory import MemoryConnectionStore
from chalicelib.services.websocket import STREAM, STREAM_GRACE_S, WebsocketService, token_from
from tests.integration.test_websocket_service import NOW, Recorder, field


class Service:
    """A websocket service over a memory store, a recording notifier and a clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW
        self.sent = Recorder()
        tokens: dict[str, dict[str, Any]] = {"t": {"type": "user", "userId": "u1", "exp": NOW + 3600}}
        self.ws = WebsocketService(MemoryConnectionStore(), self.sent, authenticate=tokens.get,
                                   clock=lambda: self.now)

    def later(self) -> WebsocketService:
        """The service once the streams have begun."""
        self.now += STREAM_GRACE_S
        return self.ws


def test_a_connection_that_never_subscribes_gets_every_event_in_the_reference_envelope() -> None:
    made = Service()
    ws, sent = made.ws, made.sent
    ws.connect("console", query={"access_token": "t"})
    ws.connect("quiet", query={"access_token": "t", "stream": "none"})
    result = made.later().notify([field("g.1.1.T", current={"value": 1}), field("g.2.1.H")])
    assert result.posted == 2
    frames = sent.events("console")
    assert [set(frame) for frame in frames] == [{"type", "data"}] * 2
    assert [frame["data"]["entityQuickId"] for frame in frames] == ["field:g.1.1.T", "field:g.2.1.H"]
    assert frames[0]["data"]["entity"]["current"] == {"value": 1}
    assert sent.events("quiet") == []


def test_the_first_subscribe_or_unsubscribe_ends_the_stream() -> None:
    made = Service()
    ws, sent = made.ws, made.sent
    for connection_id in ("a", "b"):
        ws.connect(connection_id, query={"access_token": "t"})
    ws.message("a", json.dumps({"type": "subscribe", "id": "temp", "filter": {"quickIds": ["field:g.1.1.T"]}}))
    ws.message("b", json.dumps({"type": "unsubscribe", "id": "nothing"}))
    ws.message("b", json.dumps({"type": "ping"}))
    made.later().notify([field("g.1.1.T"), field("g.2.1.H")])
    assert [(m["subscriptions"], m["data"]["entityId"]) for m in sent.events("a")] == [(["temp"], "g.1.1.T")]
    assert sent.events("b") == []
    assert STREAM not in (ws.store.get("a") or {})["subscriptions"]


def test_a_ping_keeps_the_stream_and_clients_cannot_name_it() -> None:
    made = Service()
    ws, sent = made.ws, made.sent
    ws.connect("a", query={"access_token": "t"})
    assert ws.message("a", json.dumps({"type": "ping"})) == {"type": "pong"}
    assert ws.message("a", json.dumps({"type": "unsubscribe", "id": STREAM}))["type"] == "error"
    made.later().notify([field("g.1.1.T")])
    assert len(sent.events("a")) == 1


def test_the_reference_cookie_carries_a_token() -> None:
    assert token_from({}, {"Cookie": "x=1; __mc_auth=ref"}) == "ref"
    assert token_from({}, {"Cookie": "__mc_auth=ref; mc_access_token=ours"}) == "ours"


def test_the_stream_starts_after_a_grace_so_that_subscribing_clients_never_see_it() -> None:
    made = Service()
    made.ws.connect("a", query={"access_token": "t"})
    made.ws.notify([field("g.1.1.T")])
    assert made.sent.events("a") == []
    made.later().notify([field("g.1.1.T")])
    assert len(made.sent.events("a")) == 1
