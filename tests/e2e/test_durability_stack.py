"""`make run` killed with SIGKILL, as a power cut or the OOM killer stops it, while the simulator's traffic is
ingested and a client keeps writing (#16 item 1): after a restart every write it answered 200 is there (tasks,
handlers, dashboards, labels, settings, users), the security changes hold (a logged-out token, a deleted user, a
changed password, a deleted service token stay refused), and nothing is half-written (each record whole or absent;
the file passes SQLite's integrity check)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.e2e.stack import ADMIN_PASSWORD, Stack, wait_for

NEW_PASSWORD = "Quartz-Meadow-Ferry-31"
ULLA = "Copper-Finch-Window-6"


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def ok(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    status, answer = call(base, method, path, body, token)
    assert status == 200, (method, path, status, answer)
    return answer


def login(base: str, username: str, password: str) -> str:
    return str(ok(base, "POST", "/api/user/login", {"username": username, "password": password})["token"])


def kill_9(stack: Stack) -> None:
    os.killpg(stack.process.pid, signal.SIGKILL)
    stack.process.wait(30)
    stack.log.close()


def dashboard(n: int) -> dict[str, Any]:
    return {"id": f"burst-{n}", "title": f"Burst {n}", "labels": {"n": str(n)}, "widgets": [
        {"id": "w1", "title": "Lamp", "type": "switch", "layout": {"w": 2, "h": 2, "x": 0, "y": 0},
         "config": {"resource": "field:sim.1.3.V_STATUS"}}]}


def test_kill_9_keeps_every_answered_write_and_no_half_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stack = Stack(data_dir)
    base = stack.base
    answered: list[int] = []
    try:
        admin = login(base, "admin", ADMIN_PASSWORD)
        ok(base, "POST", "/api/task", {"id": "t1", "description": "hot", "evaluationConfig": {"rule": {
            "conditions": [{"variable": "entity.current.value", "operator": "gt", "value": 30}]}}}, admin)
        ok(base, "POST", "/api/handler", {"id": "h1", "type": "noop"}, admin)
        ok(base, "POST", "/api/dashboard", dashboard(0) | {"id": "home", "title": "Home"}, admin)
        ok(base, "POST", "/api/settings/system", {"language": "fr-fr"}, admin)
        node = wait_for(lambda: call(base, "GET", "/api/node/sim.1", token=admin)[1] if call(
            base, "GET", "/api/node/sim.1", token=admin)[0] == 200 else None, 30, "the simulated node")
        ok(base, "POST", "/api/node", {**node, "labels": {**node["labels"], "room": "attic"}}, admin)

        ok(base, "POST", "/api/user", {"username": "ulla", "password": ULLA, "role": "user"}, admin)
        ulla_before = login(base, "ulla", ULLA)
        ok(base, "POST", "/api/user", {"id": "ulla", "username": "ulla", "password": NEW_PASSWORD}, admin)
        ok(base, "POST", "/api/user", {"username": "gone", "password": "Lantern-Harbor-Away-5", "role": "user"},
           admin)
        gone = login(base, "gone", "Lantern-Harbor-Away-5")
        ok(base, "DELETE", "/api/user", ["gone"], admin)
        logged_out = login(base, "admin", ADMIN_PASSWORD)
        ok(base, "POST", "/api/user/logout", {}, logged_out)
        minted = ok(base, "POST", "/api/servicetoken", {"name": "script", "neverExpire": True}, admin)
        assert call(base, "GET", "/api/node", token=minted["token"])[0] == 200
        ok(base, "DELETE", "/api/servicetoken", [minted["id"]], admin)

        stop = threading.Event()

        def burst() -> None:  # a client that keeps writing until the server is gone
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    status, _ = call(base, "POST", "/api/dashboard", dashboard(n), admin)
                except OSError:
                    return
                if status == 200:
                    answered.append(n)

        writer = threading.Thread(target=burst)
        writer.start()
        wait_for(lambda: len(answered) >= 5, 20, "the burst of writes")
        time.sleep(random.uniform(0.05, 0.5))
        kill_9(stack)  # mid-write: the burst and the simulator's ingest are running
        stop.set()
        writer.join(15)
    finally:
        if stack.process.poll() is None:
            stack.stop()

    with closing(sqlite3.connect(data_dir / "repository.sqlite3")) as db:  # the log replayed, nothing torn
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    again = Stack(data_dir)
    base = again.base
    try:
        admin = login(base, "admin", ADMIN_PASSWORD)
        assert ok(base, "GET", "/api/task/t1", token=admin)["description"] == "hot"
        assert ok(base, "GET", "/api/handler/h1", token=admin)["type"] == "noop"
        assert ok(base, "GET", "/api/dashboard/home", token=admin)["title"] == "Home"
        assert ok(base, "GET", "/api/settings/system", token=admin)["language"] == "fr-fr"
        assert ok(base, "GET", "/api/node/sim.1", token=admin)["labels"]["room"] == "attic"
        stored = {d["id"]: d for d in ok(base, "GET", "/api/dashboard?limit=0", token=admin)["data"]}
        assert answered and all(f"burst-{n}" in stored for n in answered), "an answered write was lost"
        for record in stored.values():  # answered or not, whole
            if record["id"].startswith("burst-"):
                n = int(record["id"].removeprefix("burst-"))
                assert (record["title"], record["labels"], len(record["widgets"])) == (f"Burst {n}", {"n": str(n)}, 1)

        assert call(base, "GET", "/api/node", token=logged_out)[0] == 401  # logout stays
        assert call(base, "GET", "/api/node", token=gone)[0] == 401  # the deleted user stays deleted
        assert call(base, "POST", "/api/user/login", {"username": "gone", "password": "Lantern-Harbor-Away-5"}
                    )[0] == 401
        assert call(base, "GET", "/api/node", token=ulla_before)[0] == 401  # the password change ended it
        assert call(base, "POST", "/api/user/login", {"username": "ulla", "password": ULLA})[0] == 401
        assert login(base, "ulla", NEW_PASSWORD)
        assert call(base, "GET", "/api/node", token=minted["token"])[0] == 401  # the deleted token stays deleted
    finally:
        again.stop()
