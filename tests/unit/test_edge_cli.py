"""The ``mycontroller-edge`` command (#21): its version, and ``install-service`` writing a unit and naming the
commands it would run (``--root``, ``--dry-run``)."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pytest

from edge import cli, service
from edge.__main__ import format_status
from mycontroller_protocol.version import VERSION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edge"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mycontroller-edge {VERSION}"


def test_status_names_the_running_agents_version() -> None:
    status = {"edge_id": "pi", "version": "1.2.3", "updated_epoch": 0, "stopped_at": "2026-12-06T00:00:00Z",
              "uplink": {}, "spool": {}, "sender": {}, "gateways": {}}
    assert "edge pi  version 1.2.3  pid" in format_status(status)
    assert "version -" in format_status({**status, "version": None}), "a status from before versions"


def _install(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = service.main(["--root", str(tmp_path), "--config", "/etc/mycontroller/edge.yaml", *extra], out, err)
    return code, out.getvalue(), err.getvalue()


def test_install_service_under_a_root_writes_the_unit_and_prints_the_commands(tmp_path: Path) -> None:
    (tmp_path / "etc/mycontroller").mkdir(parents=True)
    shutil.copy(FIXTURES / "edge.yaml", tmp_path / "etc/mycontroller/edge.yaml")  # data_dir: ./data
    code, out, _ = _install(tmp_path)
    assert code == 0, out
    unit = (tmp_path / "etc/systemd/system/mycontroller-edge.service").read_text()
    assert "User=mycontroller\n" in unit and "SupplementaryGroups=dialout\n" in unit
    assert "ReadWritePaths=/etc/mycontroller/data\n" in unit, "the config's data_dir, as the device sees it"
    assert "ExecStart=" in unit and "run --config /etc/mycontroller/edge.yaml\n" in unit
    assert "EnvironmentFile=-/etc/mycontroller/edge.env\n" in unit and "WantedBy=multi-user.target" in unit
    lines = out.splitlines()
    assert any(line.startswith(("useradd --system", "usermod --append --groups dialout")) for line in lines)
    assert "install -d -o mycontroller -g mycontroller -m 0750 /etc/mycontroller/data" in lines
    assert lines[-2:] == ["systemctl daemon-reload", "systemctl enable --now mycontroller-edge.service"]


def test_install_service_dry_run_writes_nothing_and_takes_its_options(tmp_path: Path) -> None:
    code, out, err = _install(tmp_path, "--dry-run", "--data-dir", "/var/lib/edge-pi", "--user", "pi-agent",
                              "--serial-group", "uucp", "--no-start")
    assert code == 0 and not err
    assert not (tmp_path / "etc").exists()
    assert "StateDirectory=edge-pi\n" in out and "User=pi-agent\n" in out and "SupplementaryGroups=uucp\n" in out
    assert out.rstrip().endswith("systemctl enable mycontroller-edge.service")


def test_install_service_runs_this_installation(tmp_path: Path) -> None:
    command = service.this_command()
    assert command[0] == sys.executable or command[0].endswith("/mycontroller-edge")
    code, out, _ = _install(tmp_path, "--dry-run")
    assert code == 0 and f"ExecStart={command[0]}" in out


def test_install_service_refuses_a_config_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "etc/mycontroller").mkdir(parents=True)
    shutil.copy(FIXTURES / "bad.yaml", tmp_path / "etc/mycontroller/edge.yaml")
    code, _, err = _install(tmp_path)
    assert code == 2 and "--data-dir" in err
    assert not (tmp_path / "etc/systemd").exists()


def test_install_service_for_real_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service.os, "geteuid", lambda: 1000)
    err = io.StringIO()
    assert service.main(["--config", "/etc/mycontroller/edge.yaml"], io.StringIO(), err) == 2
    assert "needs root" in err.getvalue()
