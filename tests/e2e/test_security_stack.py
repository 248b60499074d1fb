"""`make run` as accounts of each role and a guesser meet it, over real HTTP and real websockets: a viewer cannot
write, a user cannot manage users or restore backups, a service token a user mints cannot be admin, the last admin
cannot be demoted, logging out (or a password change) closes the open websocket within 5 s, and the sixth of 100
wrong passwords is answered 429 with Retry-After.

One stack for the module; the guessing test runs last, since it locks this client's address for a while."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.stack import ADMIN_PASSWORD, Stack

PASSWORDS = {"vic": "Meadow-Lark-Signal-4", "ulla": "Copper-Finch-Window-6"}


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None
         ) -> tuple[int, Any, dict[str, str]]:
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


class Site:
    def __init__(self, stack: Stack) -> None:
        self.base = stack.base
        self.admin = self.login("admin", ADMIN_PASSWORD)

    def login(self, username: str, password: str) -> str:
        status, body, _ = call(self.base, "POST", "/api/user/login", {"username": username, "password": password})
        assert status == 200, body
        return str(body["token"])

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        status, answer, _ = call(self.base, method, path, body, token or self.admin)
        return status, answer

    def socket(self, token: str) -> ClientConnection:
        client = connect(f"{self.base.replace('http://', 'ws://')}/api/ws?access_token={token}", open_timeout=10)
        client.send(json.dumps({"type": "subscribe", "id": "all", "filter": {}}))
        assert json.loads(client.recv(timeout=10)) == {"type": "subscribed", "id": "all"}
        return client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    stack = Stack(Path(tmp_path_factory.mktemp("security")) / "data")
    try:
        made = Site(stack)
        for name, role in (("vic", "viewer"), ("ulla", "user")):
            status, body = made.call("POST", "/api/user", {"username": name, "password": PASSWORDS[name],
                                                           "role": role})
            assert status == 200 and body["role"] == role, body
        yield made
    finally:
        stack.stop()


def closed_within(client: ClientConnection, seconds: float) -> tuple[int | None, float]:
    """Read until the server closes; the close code and how long it took."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() - started < seconds:
            client.recv(timeout=max(0.01, seconds - (time.monotonic() - started)))
        raise TimeoutError(f"still open after {seconds} s")
    rcvd = closed.value.rcvd
    return (rcvd.code if rcvd is not None else None), time.monotonic() - started


def test_a_viewer_reads_and_subscribes_but_cannot_write(site: Site) -> None:
    viewer = site.login("vic", PASSWORDS["vic"])
    assert site.call("GET", "/api/node", token=viewer)[0] == 200
    status, body = site.call("POST", "/api/gateway", {"id": "mine", "provider": {"type": "mysensors_v2"}}, viewer)
    assert status == 403 and "needs the user role (yours is viewer)" in body["message"]
    assert site.call("POST", "/api/action", [{"resource": "field:sim.1.3.V_STATUS", "payload": "toggle"}],
                     viewer)[0] == 403
    with site.socket(viewer):
        pass  # subscribing is reading


def test_a_user_cannot_create_users_or_restore_backups(site: Site) -> None:
    user = site.login("ulla", PASSWORDS["ulla"])
    assert site.call("POST", "/api/gateway", {"id": "ullas", "provider": {"type": "mysensors_v2"}}, user)[0] == 200
    for method, path, body in (("POST", "/api/user", {"username": "mallory", "password": "Pumpkin-Orbit-Lark-1",
                                                      "role": "admin"}),
                               ("POST", "/api/user", {"id": "admin", "username": "admin",
                                                      "password": "Taken-Over-Now-99"}),
                               ("POST", "/api/backup/run", {}), ("POST", "/api/backup/restore", {"name": "a.zip"}),
                               ("POST", "/api/settings/system", {"language": "xx"})):
        status, answer = site.call(method, path, body, user)
        assert status == 403, (method, path, answer)
    assert site.login("admin", ADMIN_PASSWORD)


def test_a_service_token_minted_by_a_user_cannot_be_admin(site: Site) -> None:
    user = site.login("ulla", PASSWORDS["ulla"])
    status, body = site.call("POST", "/api/servicetoken", {"name": "x", "neverExpire": True, "role": "admin"}, user)
    assert status == 403 and body["field"] == "role"
    status, body = site.call("POST", "/api/servicetoken", {"name": "x", "neverExpire": True}, user)
    assert status == 200 and body["role"] == "user"
    assert site.call("GET", "/api/user", token=body["token"])[0] == 403


def test_the_last_admin_cannot_be_demoted(site: Site) -> None:
    status, body = site.call("POST", "/api/user", {"id": "admin", "username": "admin", "role": "viewer"})
    assert status == 403 and "last admin" in body["message"]
    assert site.call("GET", "/api/user/profile")[1]["role"] == "admin"


def test_logout_closes_the_websocket_within_5_s(site: Site) -> None:
    token = site.login("admin", ADMIN_PASSWORD)
    with site.socket(token) as client, site.socket(site.admin) as other:
        assert site.call("POST", "/api/user/logout", {}, token)[0] == 200
        code, took = closed_within(client, 5)
        assert code == 4401 and took < 5
        other.send(json.dumps({"type": "ping"}))  # another session of the same user stays open
        while (message := json.loads(other.recv(timeout=5)))["type"] != "pong":
            assert message["type"] == "event"


def test_a_password_change_closes_the_users_websockets_within_5_s(site: Site) -> None:
    user = site.login("ulla", PASSWORDS["ulla"])
    with site.socket(user) as client:
        status, body = site.call("POST", "/api/user/profile", {"password": "Copper-Finch-Door-7",
                                                               "currentPassword": PASSWORDS["ulla"]}, user)
        assert status == 200, body
        code, took = closed_within(client, 5)
        assert code == 4401 and took < 5
    PASSWORDS["ulla"] = "Copper-Finch-Door-7"
    assert site.call("GET", "/api/node", token=user)[0] == 401


def test_a_hundred_wrong_passwords_are_429_with_retry_after_from_the_sixth(site: Site) -> None:
    statuses, retry_after = [], []
    for n in range(100):
        status, _, headers = call(site.base, "POST", "/api/user/login", {"username": "admin",
                                                                          "password": f"Wrong-Guess-{n:03d}"})
        statuses.append(status)
        if status == 429:
            retry_after.append(int(headers["Retry-After"]))
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    assert min(retry_after) > 0 and max(retry_after) <= 30
    status, _, headers = call(site.base, "POST", "/api/user/login", {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 429 and int(headers["Retry-After"]) > 0  # the right password waits too
