"""The ``mycontroller`` command (#21) over a data directory: its version, a backup restored into another directory,
a password reset on the host, dead letters replayed, and the passed-through commands."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.core.model import Kind
from chalicelib.local import cli
from mycontroller_protocol.version import VERSION

PASSWORD = "Sturdy-Pass-9876"
NEW_PASSWORD = "An0ther-Strong-Pass"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory with the first admin and a gateway in it, as ``serve`` leaves it."""
    for name in ("DATA_DIR", "STORAGE", "METRICS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MC_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the command sets DATA_DIR for its container
    data = tmp_path / "data"
    data.mkdir()
    container = cli._container(data)
    try:
        container.auth.ensure_admin()
        container.repository.put(Kind.GATEWAY, {"id": "gw1", "description": "kept"})
    finally:
        container.close()
    yield data


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(argv), out, err), out.getvalue(), err.getvalue()


def _login(data: Path, password: str) -> bool:
    from chalicelib.services.errors import ServiceError

    container = cli._container(data)
    try:
        container.auth.login("admin", password, 60)
    except ServiceError:
        return False
    finally:
        container.close()
    return True


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"mycontroller {VERSION}"


def test_backup_then_restore_into_a_new_directory(data_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "home.zip"
    code, out, err = run("backup", "--data-dir", str(data_dir), "--output", str(archive))
    assert code == 0, err
    assert archive.stat().st_size > 0 and "kept in" in out
    fresh = tmp_path / "fresh"
    code, out, err = run("restore", str(archive), "--data-dir", str(fresh))
    assert code == 0, err
    assert "gateway 1" in out and "user 1" in out
    container = cli._container(fresh)
    try:
        assert container.repository.get(Kind.GATEWAY, "gw1") is not None
    finally:
        container.close()
    assert _login(fresh, PASSWORD)


def test_a_bad_archive_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    code, _, err = run("restore", str(bad), "--data-dir", str(data_dir))
    assert code == 1 and "not a usable backup" in err


def test_reset_password(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))
    code, out, err = run("admin", "reset-password", "--password-stdin", "--data-dir", str(data_dir))
    assert code == 0, err
    assert NEW_PASSWORD not in out and _login(data_dir, NEW_PASSWORD) and not _login(data_dir, PASSWORD)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, nothing given: one is generated, shown once
    code, out, _ = run("admin", "reset-password", "--data-dir", str(data_dir))
    generated = out.split(": ", 1)[1].split(" ")[0]
    assert code == 0 and _login(data_dir, generated)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run("admin", "reset-password", "--password-stdin", "--data-dir", str(data_dir))
    assert code == 1 and "password" in err
    code, _, err = run("admin", "reset-password", "--username", "nobody", "--data-dir", str(data_dir))
    assert code == 1 and "no user named 'nobody'" in err


def test_commands_need_an_existing_data_directory(tmp_path: Path) -> None:
    for argv in (("backup",), ("admin", "reset-password")):
        code, _, err = run(*argv, "--data-dir", str(tmp_path / "none"))
        assert code == 1 and "no server data" in err
    assert not (tmp_path / "none").exists()


def test_dead_letters(data_dir: Path) -> None:
    code, out, _ = run("replay-dead-letters", "--data-dir", str(data_dir), "--wait", "0")
    assert code == 0 and "nothing to replay" in out
    assert cli.main(["dead-letters", "--data-dir", str(data_dir), "list"]) == 0
