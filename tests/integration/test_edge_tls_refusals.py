"""A refused connection explained (issue #19), against mosquitto with mutual TLS and with passwords: a client
certificate the broker does not take, no certificate, a broker we do not trust, a refused CONNECT with its reason,
as ``python -m edge status`` and the log show them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.config import UplinkSection
from edge.uplink.mqtt import MqttUplink
from tests.integration.edge_helpers import (
    PYTHON,
    REPO,
    AgentProcess,
    Broker,
    make_certificates,
    wait_until,
    write_config,
)
from tests.integration.services import find_binary


def _tls_broker(make_broker: Callable[..., Broker], certs: dict[str, Path]) -> Broker:
    return make_broker("tls", persistent=False, listener=[
        f"cafile {certs['ca.pem']}", f"certfile {certs['server.pem']}", f"keyfile {certs['server.key']}",
        "require_certificate true"])


def _last_error(config: UplinkSection, timeout: float = 30) -> tuple[str, int]:
    async def scenario() -> tuple[str, int]:
        uplink = MqttUplink(config, "refused-client", "mc/x/up", [])
        await uplink.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not uplink.last_error and not uplink.connected and loop.time() < deadline:
                await asyncio.sleep(0.05)
            return uplink.last_error, uplink.connects
        finally:
            await uplink.stop()

    return asyncio.run(scenario())


@pytest.mark.parametrize("uplink_type", ["mqtt", "aws_iot"])
def test_a_client_certificate_the_broker_does_not_take_is_named_as_such(
        make_broker: Callable[..., Broker], certificates: dict[str, Path], tmp_path: Path, uplink_type: str) -> None:
    broker = _tls_broker(make_broker, certificates)
    stranger = make_certificates(tmp_path / "another-ca")  # a certificate from a CA the broker does not know
    config = UplinkSection(type=uplink_type, host="localhost", port=broker.port,  # type: ignore[arg-type]
                           min_reconnect_delay_ms=100, max_reconnect_delay_ms=200, tls={  # type: ignore[arg-type]
                               "ca": str(certificates["ca.pem"]), "cert": str(stranger["client.pem"]),
                               "key": str(stranger["client.key"])})
    error, connects = _last_error(config)
    assert connects == 0
    assert error.startswith(f"connect failed: the broker at localhost:{broker.port} refused the client certificate "
                            f"{stranger['client.pem']} (uplink.tls.cert)"), error
    assert "AWS_IO" not in error

    without = config.model_copy(update={"tls": config.tls.model_copy(update={"cert": None, "key": None})})  # type: ignore[union-attr]
    if uplink_type == "mqtt":  # aws_iot always has a certificate
        error, _ = _last_error(without)
        assert "ended the TLS handshake: it wants a client certificate (uplink.tls.cert and uplink.tls.key)" \
            in error, error


def test_a_broker_we_do_not_trust_names_the_ca_setting(make_broker: Callable[..., Broker],
                                                       certificates: dict[str, Path], tmp_path: Path) -> None:
    broker = _tls_broker(make_broker, certificates)
    stranger = make_certificates(tmp_path / "another-ca")
    config = UplinkSection(type="mqtt", host="localhost", port=broker.port, min_reconnect_delay_ms=100,
                           max_reconnect_delay_ms=200, tls={  # type: ignore[arg-type]
                               "ca": str(stranger["ca.pem"]), "cert": str(certificates["client.pem"]),
                               "key": str(certificates["client.key"])})
    error, _ = _last_error(config)
    assert f"its certificate is not trusted by uplink.tls.ca {stranger['ca.pem']}" in error, error


def _password_broker(make_broker: Callable[..., Broker], tmp_path: Path) -> Broker:
    passwords = tmp_path / "passwd.txt"
    subprocess.run([find_binary("mosquitto_passwd", "/usr/bin/mosquitto_passwd"), "-b", "-c", str(passwords),
                    "edge", "right"], check=True, capture_output=True)
    passwords.chmod(0o600)
    return make_broker("passwords", persistent=False, listener=[f"password_file {passwords}",
                                                                "allow_anonymous false"])


def test_a_refused_connect_gives_the_connack_reason_in_words(make_broker: Callable[..., Broker],
                                                             tmp_path: Path) -> None:
    broker = _password_broker(make_broker, tmp_path)
    base: dict[str, Any] = {"type": "mqtt", "host": "127.0.0.1", "port": broker.port, "min_reconnect_delay_ms": 100,
                            "max_reconnect_delay_ms": 200}
    error, _ = _last_error(UplinkSection.model_validate({**base, "username": "edge", "password": "wrong"}))
    assert error == (f"connect failed: the broker at 127.0.0.1:{broker.port} refused the connection: CONNACK reason "
                     "0x87 not authorized (check uplink.username and uplink.password)"), error
    error, _ = _last_error(UplinkSection(**base))
    assert ("CONNACK reason 0x87 not authorized (it wants a user name and password: uplink.username and "
            "uplink.password)") in error, error
    error, connects = _last_error(UplinkSection.model_validate({**base, "username": "edge", "password": "right"}))
    assert connects == 1 and not error


def test_the_agent_status_and_log_say_the_certificate_was_refused(
        make_broker: Callable[..., Broker], certificates: dict[str, Path], tmp_path: Path) -> None:
    broker = _tls_broker(make_broker, certificates)
    stranger = make_certificates(tmp_path / "another-ca")
    config = write_config(tmp_path / "edge.yaml", port=broker.port, gateways=[], host="localhost", tls={
        "ca": str(certificates["ca.pem"]), "cert": str(stranger["client.pem"]), "key": str(stranger["client.key"])})
    agent = AgentProcess(config).start()
    try:
        wait_until(lambda: ((agent.status() or {}).get("uplink") or {}).get("last_error"), 30, "the refusal")
        text = subprocess.run([PYTHON, "-m", "edge", "status", "--config", str(config)], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
    finally:
        assert agent.terminate() == 0
    uplink_line = next(line for line in text.splitlines() if line.startswith("uplink"))
    assert "DISCONNECTED" in uplink_line and "refused the client certificate" in uplink_line, uplink_line
    logged = [json.loads(line) for line in agent.log.read_text().splitlines() if line.startswith("{")]
    failures = [entry for entry in logged if entry["msg"].startswith("uplink connect failed")]
    assert failures and "refused the client certificate" in failures[0]["msg"]
    assert failures[0]["code"] == "AWS_IO_TLS_ERROR_READ_FAILURE", "the CRT's own code stays in the log"


def test_an_mqtt_gateway_says_why_its_broker_refused_it(make_broker: Callable[..., Broker],
                                                        certificates: dict[str, Path], tmp_path: Path) -> None:
    from edge.gateways import build_gateway
    from tests.integration.gateway_helpers import FakeContext, running, wait_for

    passwords = _password_broker(make_broker, tmp_path)
    tls = _tls_broker(make_broker, certificates)
    stranger = make_certificates(tmp_path / "another-ca")

    async def state_of(protocol: dict[str, Any]) -> str:
        ctx = FakeContext("tas")
        gateway = build_gateway("tas", {"id": "tas", "reconnectDelay": "1s", "provider": {
            "type": "tasmota", "protocol": {"type": "mqtt", **protocol}}}, ctx)
        async with running(gateway):
            states = await wait_for(lambda: [m for s, m in ctx.states if s == "down"], what="the refusal")
        return str(states[0])

    message = asyncio.run(state_of({"broker": passwords.url, "username": "edge", "password": "wrong"}))
    assert message == (f"the broker at {passwords.url} refused the connection: CONNACK reason 0x87 not authorized "
                       "(check provider.protocol.username and provider.protocol.password)"), message
    url = f"ssl://localhost:{tls.port}"
    message = asyncio.run(state_of({"broker": url, "caFile": str(certificates["ca.pem"]),
                                    "certFile": str(stranger["client.pem"]), "keyFile": str(stranger["client.key"])}))
    assert message.startswith(f"the broker at {url} refused the client certificate {stranger['client.pem']} "
                              "(provider.protocol.certFile)"), message
