"""`make run` on one port: the API at /api, the dashboard at /, and live updates at /api/ws — log in, subscribe to
one simulated field, see its new values arrive and nothing else."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.stack import Stack, request, token, wait_for


def get(base: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_one_port_serves_api_dashboard_and_live_field_updates(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data")  # the shared harness: `make run`, admin's password set
    try:
        status, body = get(stack.base, "/")
        assert status == 200 and b"<html" in body.lower()
        access_token = token(stack.base)
        ws_url = stack.base.replace("http://", "ws://") + "/api/ws"

        with connect(ws_url, open_timeout=10) as anonymous, pytest.raises(ConnectionClosed) as closed:
            anonymous.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

        def temperature() -> Any:
            fields = request(stack.base, "/api/field?limit=0")["data"]
            return next((f["id"] for f in fields if f["id"].endswith(".V_TEMP")), None)

        field_id = wait_for(temperature, 60, "a simulated temperature field")
        with connect(f"{ws_url}?access_token={access_token}", open_timeout=10) as client:
            client.send(json.dumps({"type": "subscribe", "id": "t", "filter": {"quickIds": [f"field:{field_id}"]}}))
            assert json.loads(client.recv(timeout=10)) == {"type": "subscribed", "id": "t"}
            events = []
            deadline = time.monotonic() + 30
            while len(events) < 2 and time.monotonic() < deadline:
                message = json.loads(client.recv(timeout=30))
                assert message["type"] == "event", message
                events.append(message)
            assert len(events) == 2
            for message in events:
                assert message["subscriptions"] == ["t"]
                assert message["data"]["entityQuickId"] == f"field:{field_id}"
                assert message["data"]["type"] in ("created", "updated")
    finally:
        stack.stop()
