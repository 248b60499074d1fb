"""The local stack's path for cloud configs: a gateway upserted through the API with ``"edgeId": "local"``
reaches the in-process edge agent through the local shadow service, which starts it (a TCP server plays the
MySensors ethernet gateway), restarts it on a change and stops it on delete; what the agent reports shows on
``GET /api/gateway/<id>``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.local.gateways import EDGE_ID, LocalGatewayHost, local_shadow
from tests.integration.api_helpers import Api
from tests.integration.edge_helpers import free_port

pytestmark = pytest.mark.integration


class TcpDevice:
    """A listening socket that counts the connections made to it and notices when they close."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(0.2)
        self.open: list[socket.socket] = []
        self.accepted = 0
        self.closed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                self._reap()
                continue
            connection.settimeout(0)
            self.open.append(connection)
            self.accepted += 1

    def _reap(self) -> None:
        for connection in list(self.open):
            try:
                if connection.recv(4096) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:
                pass
            self.open.remove(connection)
            self.closed += 1
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in self.open:
            connection.close()
        self.server.close()


def wait(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def host(api: Api, tmp_path: Path) -> Iterator[LocalGatewayHost]:
    api.use(rebuilt=("shadow",))  # the local shadow service, as the local stack has it
    shadow = local_shadow(api.container)
    gateways = LocalGatewayHost([], lambda body: None, api.container.downlink, tmp_path / "stack", shadow=shadow)
    gateways.start()
    yield gateways
    gateways.stop()


def ethernet(gateway_id: str, port: int) -> dict[str, Any]:
    return {"id": gateway_id, "edgeId": EDGE_ID, "reconnectDelay": "1s",
            "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet", "server": f"tcp://127.0.0.1:{port}"}}}


@pytest.mark.parametrize("api", ["memory"], indirect=True)
def test_api_gateways_for_edge_local_run_in_the_local_agent(api: Api, host: LocalGatewayHost) -> None:
    first, second = TcpDevice(), TcpDevice()
    try:
        api.ok("POST", "/api/gateway", ethernet("eth", first.port))
        wait(lambda: first.accepted == 1, "the local agent connecting to the gateway the API added")
        edge = wait(lambda: api.ok("GET", "/api/gateway/eth").get("others", {}).get("edge"), "the reported state")
        assert edge["thing"] == EDGE_ID and edge["status"] == "running" and edge["inSync"] is True
        assert "eth" in host.gateway_ids  # downlinks are routed to it

        api.ok("POST", "/api/gateway", ethernet("eth", second.port))
        wait(lambda: second.accepted == 1 and first.closed == 1, "the gateway restarted with its new server")

        status, _body, _ = api.call("POST", "/api/gateway", {"id": "eth", "provider": {
            "type": "mysensors_v2", "protocol": {"type": "ethernet"}}})
        assert status == 200  # the API stores it; the edge rejects it and keeps the running one
        edge = wait(lambda: (api.ok("GET", "/api/gateway/eth")["others"]["edge"]["status"] == "rejected"
                             and api.ok("GET", "/api/gateway/eth")), "the rejection reported")["others"]["edge"]
        assert "needs 'server'" in edge["message"] and edge["inSync"] is False
        assert api.ok("GET", "/api/gateway/eth")["state"]["status"] == "error"
        assert second.closed == 0 and len(second.open) == 1

        api.ok("DELETE", "/api/gateway", ["eth"])
        wait(lambda: second.closed == 1, "the gateway stopped after its delete")
        wait(lambda: "eth" not in host.gateway_ids, "its downlink route removed")
    finally:
        first.stop()
        second.stop()
