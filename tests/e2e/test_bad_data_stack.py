"""Bad data stays local (#16 item 6) on `make run` itself: a MySensors ethernet gateway (a TCP server here) feeds the
stack through its edge configuration; the API, the dead-letter file and ``python -m chalicelib.local dead-letters``
are used as a user would use them, while the stack runs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, Stack, token, wait_for


class EthernetGateway:
    """A MySensors ethernet gateway: the edge's plugin connects to it and reads the lines it writes."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connection: socket.socket | None = None

    def send(self, *lines: str) -> None:
        if self.connection is None:
            self.server.settimeout(60)
            self.connection, _ = self.server.accept()
        self.connection.sendall("".join(line + "\n" for line in lines).encode())

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.server.close()


class Site:
    def __init__(self, stack: Stack, gateway: EthernetGateway, data_dir: Path) -> None:
        self.base = stack.base
        self.gateway = gateway
        self.data_dir = data_dir

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"content-type": "application/json",
                                                  "Authorization": f"Bearer {token(self.base)}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def value(self, field_id: str) -> Any:
        status, body = self.call("GET", f"/api/field/{field_id}")
        return body["current"]["value"] if status == 200 else None

    def dead_letters(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "chalicelib.local", "dead-letters", "--data-dir",
                               str(self.data_dir), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def letters(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.dead_letters("list", "--json").splitlines()]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = Path(tmp_path_factory.mktemp("bad-data"))
    gateway = EthernetGateway()
    config = root / "edge.yaml"
    config.write_text("gateways:\n  - id: house\n    provider:\n      type: mysensors_v2\n      protocol: "
                      f"{{type: ethernet, server: \"tcp://127.0.0.1:{gateway.port}\"}}\n", encoding="utf-8")
    stack = Stack(root / "data", f"EDGE_CONFIG={config}")
    try:
        yield Site(stack, gateway, root / "data")
    finally:
        stack.stop()
        gateway.close()


def test_an_unusable_line_is_kept_with_its_reason_and_its_neighbours_applied(site: Site) -> None:
    site.gateway.send("12;0;1;0;0;21.5", "12;0;1;0;0;21.5;extra", "12;0;1;0;0;22.5", "12;1;1;0;1;48")

    wait_for(lambda: site.value("house.12.0.V_TEMP") == 22.5 and site.value("house.12.1.V_HUM") == 48, 30,
             "the good lines applied")
    [letter] = wait_for(site.letters, 10, "the unusable line in the dead letters")
    assert letter["queue"] == "ingest" and letter["receiveCount"] == 0, "kept at once, not retried"
    assert "'21.5;extra'" in letter["reason"] and "house.12.0.V_TEMP" in letter["reason"]
    assert "'12;0;1;0;0;21.5;extra'" in site.dead_letters("list")
    assert site.dead_letters("drop", "--all") == "ingest: 1 letter(s) dropped\nhandlers: 0 letter(s) dropped\n"


def test_posting_the_gateway_back_with_a_date_that_is_none_is_a_400_and_ingest_goes_on(site: Site) -> None:
    site.gateway.send("12;0;1;0;0;23.0")
    wait_for(lambda: site.value("house.12.0.V_TEMP") == 23.0, 30, "a value")
    status, gateway = site.call("GET", "/api/gateway/house")
    assert status == 200

    status, body = site.call("POST", "/api/gateway", {**gateway, "lastTransaction": "not-a-date"})

    assert status == 400 and body["field"] == "lastTransaction", body
    site.gateway.send("12;0;1;0;0;24.0")
    wait_for(lambda: site.value("house.12.0.V_TEMP") == 24.0, 30, "the next value")
    assert site.letters() == []


def test_dead_letters_replay_into_the_running_stack_once(site: Site) -> None:
    """A publish the queue gave up on (say the disk was full for a while), replayed twice: applied once."""
    from chalicelib.adapters import dead_letters_local
    from chalicelib.core.identity import ingest_body
    from mycontroller_protocol.envelope import Envelope, encode_publish

    body = ingest_body("local", encode_publish([Envelope("house", "mysensors_v2", 1_767_225_600_000, 1,
                                                         "replayed-1", "14;1;1;0;0;17.5")]))
    path = site.data_dir / dead_letters_local.INGEST_DEAD_LETTERS
    for _ in range(2):
        dead_letters_local.append(path, [dead_letters_local.letter(body, "failed 3 deliveries", 3)])
        assert "ingest: 1 letter(s) replayed" in site.dead_letters("replay")
        wait_for(lambda: site.value("house.14.1.V_TEMP") == 17.5, 30, "the replayed value")
    status, field = site.call("GET", "/api/field/house.14.1.V_TEMP")
    assert status == 200 and field["previous"]["value"] is None, "applied once"
    assert site.letters() == []
