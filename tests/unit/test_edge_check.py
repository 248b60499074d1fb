"""``python -m edge check`` runs the agent's own validation (issue #19): what the agent refuses, ``check`` reports,
one line each; a gateway the agent cannot build stops that gateway only; the local stack says the same, with no
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.__main__ import EXIT_CONFIG, main
from edge.agent import EdgeAgent
from edge.config import EdgeConfigError, load_config
from edge.preflight import check
from edge.uplink import InProcessUplink

REPO = Path(__file__).resolve().parents[2]
BAD_GATEWAYS: list[dict[str, Any]] = [
    {"id": "zigbee", "provider": {"type": "zigbee2mqtt"}},
    {"id": "no-host", "provider": {"type": "mysensors_v2", "protocol": {"type": "ethernet", "server": "tcp://:5003"}}},
    {"id": "http-broker", "provider": {"type": "tasmota", "protocol": {"type": "mqtt", "broker": "http://10.0.0.2"}}},
    {"id": "broker-ca", "provider": {"type": "tasmota", "protocol": {
        "type": "mqtt", "broker": "ssl://10.0.0.2:8883", "caFile": "/nonexistent/ca.pem"}}},
]
EXPECTED_GATEWAY_LINES = [
    "gateways[0](id=zigbee): no plugin for provider.type='zigbee2mqtt'",
    "gateways[1](id=no-host): no host in server address 'tcp://:5003'",
    "gateways[2](id=http-broker): broker scheme 'http' is not supported",
    "gateways[3](id=broker-ca): provider.protocol.caFile: /nonexistent/ca.pem does not exist",
]
GOOD = {"id": "host", "provider": {"type": "system_monitor", "interval": "1h"}}


def _write(tmp_path: Path, gateways: list[dict[str, Any]], **uplink: Any) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"edge": {"id": "pi", "data_dir": "data"},
                                    "uplink": {"type": "mqtt", "host": "127.0.0.1", **uplink},
                                    "gateways": gateways}, sort_keys=False))
    return path


def _problem_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines()[1:] if line.startswith("  ") and not line.strip().startswith("(")]


def test_check_reports_every_gateway_the_agent_refuses_one_line_each(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    config = _write(tmp_path, [*BAD_GATEWAYS, GOOD])
    assert main(["check", "--config", str(config)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[0].endswith("4 problem(s)")
    lines = _problem_lines(err)
    assert len(lines) == 4 and all(line.startswith(want) for line, want in zip(lines, EXPECTED_GATEWAY_LINES,
                                                                                 strict=True)), lines
    assert "the agent would run, without the gateways above" in err
    assert not (tmp_path / "data").exists(), "checking creates nothing where the agent keeps its state"

    # the agent refuses exactly these gateways, each with the same words, and runs the other one
    agent = EdgeAgent(load_config(config), uplink=InProcessUplink(lambda _body: None, "mc/pi/up", ["mc/pi/down"]))
    try:
        assert sorted(agent.gateways) == ["host"]
        refused = {f"gateways[{i}](id={g})": error for i, g in enumerate(agent.gateway_errors)
                   for error in [agent.gateway_errors[g]]}
        assert [f"{where}: {error}" for where, error in refused.items()] == lines
        assert agent.contexts["zigbee"].state["status"] == "error"
        status = agent.status()["gateways"]
        assert status["no-host"]["error"].startswith("no host in server address")
    finally:
        agent.spool.close()


def test_check_and_the_agent_refuse_a_missing_or_unusable_certificate_and_a_url_as_host(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "not-a-cert.pem").write_text("hello\n")
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    cases = [
        ({"tls": {"ca": "missing-ca.pem"}}, f"uplink.tls.ca: {tmp_path / 'missing-ca.pem'} does not exist"),
        ({"tls": {"cert": "not-a-cert.pem", "key": "key.pem"}},
         "uplink.tls: the certificate, key or CA cannot be used"),
    ]
    for uplink, expected in cases:
        config = _write(tmp_path, [GOOD], **uplink)
        assert main(["check", "--config", str(config)]) == EXIT_CONFIG
        err = capsys.readouterr().err
        assert "Traceback" not in err and _problem_lines(err)[0].startswith(expected), err
        assert "the agent would run" not in err, "an uplink it cannot use stops the agent"
        with pytest.raises(EdgeConfigError) as refused:
            EdgeAgent(load_config(config))
        assert str(refused.value).startswith(expected), "the agent refuses with the same words"
        assert main(["--config", str(config)]) == EXIT_CONFIG
        err = capsys.readouterr().err
        assert f"edge: cannot start: {expected}" in err and "Traceback" not in err
    assert "not PEM" in check(load_config(_write(tmp_path, [GOOD], tls={"cert": "not-a-cert.pem", "key": "key.pem"}))
                              )[0][0]

    config = _write(tmp_path, [GOOD], host="http://broker.example:1883")
    assert main(["check", "--config", str(config)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "uplink.host: 'http://broker.example:1883' is not a host name" in err and "Traceback" not in err


def test_a_good_config_checks_clean_and_prints_without_secrets(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    config = _write(tmp_path, [GOOD, {"id": "tas", "provider": {"type": "tasmota", "protocol": {
        "type": "mqtt", "broker": "tcp://10.0.0.2", "password": "s3cret"}}}])
    assert main(["check", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert '"id": "tas"' in captured.out and "s3cret" not in captured.out and captured.err == ""
    assert check(load_config(config)) == ([], [])


def test_the_local_stack_says_what_is_wrong_with_its_edge_config_in_one_line_each(tmp_path: Path) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text(yaml.safe_dump({"gateways": [
        {"id": "ms", "provider": {"type": "mysensors_v2", "protocol": {"type": "serial", "baudRate": "fast"}}}]}))
    broken = tmp_path / "broken.yaml"
    broken.write_text("gateways:\n  - id: x\n    provider: {type: tasmota\n")
    for path, expected in [
        (bad, "gateways[0](id=ms).provider.protocol.baudRate: Input should be a valid integer"),
        (broken, f"{broken}: not valid YAML at line"),
        (tmp_path / "missing.yaml", f"cannot read {tmp_path / 'missing.yaml'}: No such file or directory"),
    ]:
        result = subprocess.run([sys.executable, "-m", "chalicelib.local", "--edge-config", str(path), "--port", "0",
                                 "--data-dir", str(tmp_path / "data")], cwd=REPO, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == EXIT_CONFIG, result.stderr
        assert "Traceback" not in result.stderr and expected in result.stderr, result.stderr
        assert all(line.startswith("mycontroller: ") for line in result.stderr.splitlines()), result.stderr
