"""`make run` as a user runs it: the local stack with its simulated gateway, driven over HTTP."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Stack, request, wait_for


def fields_by_id(base: str) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in request(base, "/api/field?limit=0")["data"]}


def test_make_run_serves_the_simulator_obeys_actions_and_keeps_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stack = Stack(data_dir)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            request(stack.base, "/api/node", auth=False)
        assert refused.value.code == 401
        nodes = wait_for(lambda: [n for n in request(stack.base, "/api/node?limit=0")["data"]
                                  if n["name"] == "Living room"], 30, "the simulated nodes")
        node = nodes[0]
        assert node["state"]["status"] == "up"
        assert node["labels"]["library_version"]
        fields = wait_for(lambda: (f := fields_by_id(stack.base)) and "sim.1.3.V_STATUS" in f
                          and "sim.1.1.V_TEMP" in f and f, 30, "the simulated fields")
        temperature = fields["sim.1.1.V_TEMP"]
        assert temperature["metricType"] == "gauge_float" and temperature["unit"] == "°C"
        assert 5 < temperature["current"]["value"] < 40

        before = fields["sim.1.3.V_STATUS"]["current"]["value"]
        answer = request(stack.base, "/api/action", [{"id": "field:sim.1.3.V_STATUS", "payload": "toggle"}])
        assert answer["sent"] == 1
        switched = wait_for(
            lambda: (value := request(stack.base, "/api/field/sim.1.3.V_STATUS")["current"]["value"]) is not before
            and {"value": value}, 20, "the switch to follow the action")
        assert switched["value"] is (not before)
    finally:
        stack.stop()
    stopped_at = time.time()
    assert (data_dir / "repository.sqlite3").is_file()
    said = (data_dir.parent / f"stack-{stack.port}.log").read_text()
    assert f"MyController: open http://127.0.0.1:{stack.port}/" in said  # where to go, on the terminal
    assert "gateway state gateway=sim status=up" in said  # log lines carry what they are about

    again = Stack(data_dir)
    try:
        # Right after the restart, before new traffic could say so, the stored state is back.
        field = request(again.base, "/api/field/sim.1.3.V_STATUS")
        from chalicelib.core.model import ms_from_iso

        reported_after_restart = ms_from_iso(field["current"]["timestamp"]) > stopped_at * 1000
        assert reported_after_restart or field["current"]["value"] is (not before)
        names = {n["name"] for n in request(again.base, "/api/node?limit=0")["data"]}
        assert {"Living room", "Kitchen", "Bedroom"} <= names
    finally:
        again.stop()


class EthernetGateway:
    """A MySensors ethernet gateway on a TCP socket: a node presents itself; what the controller writes is kept."""

    LINES = ("0;255;3;0;14;Gateway startup complete.", "5;255;0;0;17;2.3.2", "5;255;3;0;11;Garage",
             "5;1;0;0;3;Door light", "5;1;1;0;2;0", "5;2;0;0;6;Temperature", "5;2;1;0;0;12.5")

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(120)
        conn, _ = self.server.accept()
        with conn:
            for line in self.LINES:
                conn.sendall((line + "\n").encode())
            conn.settimeout(60)
            buffer = b""
            while True:
                try:
                    data = conn.recv(1024)
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                self.received.extend(line.decode() for line in lines)


def test_make_run_with_an_edge_config_drives_a_mysensors_ethernet_gateway(tmp_path: Path) -> None:
    gateway = EthernetGateway()
    config = tmp_path / "edge.yaml"
    config.write_text(
        "gateways:\n"
        "  - id: house\n"
        "    provider:\n"
        "      type: mysensors_v2\n"
        f"      protocol: {{type: ethernet, server: \"tcp://127.0.0.1:{gateway.port}\"}}\n")
    stack = Stack(tmp_path / "data", f"EDGE_CONFIG={config}")
    try:
        node = wait_for(lambda: [n for n in request(stack.base, "/api/node?limit=0")["data"] if n["id"] == "house.5"],
                        30, "the gateway's node")[0]
        assert node["name"] == "Garage"
        field = wait_for(lambda: request(stack.base, "/api/field/house.5.2.V_TEMP"), 30, "the temperature")
        assert field["current"]["value"] == 12.5
        assert request(stack.base, "/api/gateway/house")["state"]["status"] == "up"
        answer = request(stack.base, "/api/action", [{"id": "field:house.5.1.V_STATUS", "payload": "on"}])
        assert answer["sent"] == 1
        wait_for(lambda: "5;1;1;0;2;1" in gateway.received, 20, "the set line at the gateway")
        assert "5;1;1;0;2;0" not in gateway.received
    finally:
        stack.stop()
