"""What users install (#21): the three wheels built as ``make dist`` builds them (``python -m build``, ``twine
check``), ``mycontroller-edge`` and ``mycontroller`` each installed into a fresh virtual environment outside the
checkout (``mycontroller-protocol``, which both require, found beside them), and run from there.

* ``mycontroller-edge``: ``--version``; every module of the agent imports, and no ``chalicelib`` is installed or
  loaded (the protocol code comes from ``mycontroller-protocol``); ``check`` on the example config;
  ``install-service --dry-run`` names this installation; a short run of a simulated gateway against mosquitto
  (connected, publishes sent, ``status`` with the version).
* ``mycontroller`` (with the protocol and edge wheels it requires): ``--version``; ``serve`` on a free port: log
  in, the simulator's fields appear, ``/api/version`` is the wheel's, the console page and its assets load.

The environments use pip's cache (``--find-links`` the wheel folder, the index as configured): slow the first
time, a minute or so after. Under CI (``CI=true``) a missing tool (build, twine, mosquitto, the built console)
fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import free_port, wait_for
from tests.integration.services import start_mosquitto, unavailable

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "edge"
ADMIN_PASSWORD = "Package-Smoke-Test-42"
WHEEL_VERSION = re.compile(r"^(mycontroller(?:_edge|_protocol)?)-([^-]+)-py3-none-any\.whl$")
pytestmark = pytest.mark.timeout(900)


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing into the checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DATA_DIR", "PYTHONHOME") and not k.startswith("PYTEST")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT)))
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three wheels, built and checked as ``make dist`` does (in isolation: the build requirements from the
    index)."""
    for module in ("build", "twine"):
        if _run(sys.executable, "-c", f"import {module}", cwd=ROOT, check=False).returncode != 0:
            unavailable(f"{module} is not installed (make setup: requirements-dev.txt)")
    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        unavailable("the console is not built (make frontend; needs npm): the server wheel carries it")
    out = tmp_path_factory.mktemp("dist")
    for project in ("protocol", "edge", "server"):
        _run(sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT / "packaging" / project, cwd=ROOT)
    built = {match.group(1): path for path in out.glob("*.whl") if (match := WHEEL_VERSION.match(path.name))}
    names = sorted(p.name for p in out.iterdir())
    assert set(built) == {"mycontroller", "mycontroller_edge", "mycontroller_protocol"}, names
    assert len({_version(wheel) for wheel in built.values()}) == 1, names
    _run(sys.executable, "-m", "twine", "check", "--strict", *built.values(), cwd=ROOT)
    return built


def _version(wheel: Path) -> str:
    match = WHEEL_VERSION.match(wheel.name)
    assert match is not None
    return match.group(2)


def _environment(where: Path, wheel: Path) -> Path:
    """A fresh venv (no system site packages) with ``wheel`` installed; its ``bin``."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    bin_dir = where / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--find-links", wheel.parent, wheel, cwd=where, env=_clean_env())
    return bin_dir


@pytest.fixture(scope="module")
def edge_bin(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _environment(tmp_path_factory.mktemp("edge-env") / "venv", wheels["mycontroller_edge"])


@pytest.fixture(scope="module")
def server_bin(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _environment(tmp_path_factory.mktemp("server-env") / "venv", wheels["mycontroller"])


# ------------------------------------------------------------------------------------------------- edge

IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys, edge, mycontroller_protocol
assert "site-packages" in edge.__file__ and "site-packages" in mycontroller_protocol.__file__, edge.__file__
assert importlib.util.find_spec("chalicelib") is None, "chalicelib is installed with the edge"
names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names), "mycontroller_protocol.mysensors.codec" in sys.modules,
      sorted(k for k in sys.modules if k.startswith("chalicelib")))
"""


def test_edge_wheel_installs_alone_and_checks_a_config(edge_bin: Path, wheels: dict[str, Path],
                                                      tmp_path: Path) -> None:
    version = _version(wheels["mycontroller_edge"])
    done = _run(edge_bin / "mycontroller-edge", "--version", cwd=tmp_path, env=_clean_env())
    assert done.stdout.strip() == f"mycontroller-edge {version}"
    done = _run(edge_bin / "python", "-c", IMPORT_ALL, cwd=tmp_path, env=_clean_env())
    assert done.stdout.split(maxsplit=1)[1].strip() == "True []", done.stdout
    done = _run(edge_bin / "mycontroller-edge", "check", "--config", FIXTURES / "edge.yaml", cwd=tmp_path,
                env=_clean_env())
    assert json.loads(done.stdout)["edge"]["id"] == "pi-garage" and "s3cret-uplink" not in done.stdout
    bad = _run(edge_bin / "mycontroller-edge", "check", "--config", FIXTURES / "bad.yaml", cwd=tmp_path,
               env=_clean_env(), check=False)
    assert bad.returncode == 2, bad.stderr
    done = _run(edge_bin / "mycontroller-edge", "install-service", "--dry-run", "--config", FIXTURES / "edge.yaml",
                cwd=tmp_path, env=_clean_env())
    assert f"ExecStart={edge_bin / 'mycontroller-edge'} run --config {FIXTURES / 'edge.yaml'}" in done.stdout


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    from tests.integration.services import ServiceUnavailable

    try:
        _host, port, stop = start_mosquitto(tmp_path)
    except ServiceUnavailable as error:
        unavailable(str(error))
    yield port
    stop()


def _status(edge_bin: Path, config: Path) -> dict[str, Any] | None:
    done = _run(edge_bin / "mycontroller-edge", "status", "--json", "--config", config, cwd=config.parent,
                env=_clean_env(), check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_edge_runs_a_gateway_against_mosquitto(edge_bin: Path, wheels: dict[str, Path], broker: int,
                                              tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({
        "edge": {"id": "pkg-edge", "data_dir": "data", "status_interval_s": 0.5},
        "uplink": {"type": "mqtt", "host": "127.0.0.1", "port": broker},
        "gateways": [{"id": "sim", "provider": {"type": "mysensors_v2", "protocol": {
            "type": "simulator", "nodes": 2, "interval": "200ms"}}}],
    }))
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen([edge_bin / "mycontroller-edge", "run", "--config", config], cwd=tmp_path,
                                 env=_clean_env(), stdout=out, stderr=out)
    try:
        status = wait_for(lambda: (s := _status(edge_bin, config)) and s["uplink"].get("connected")
                          and s["sender"].get("publishes", 0) > 0 and s, 60, f"publishes to mosquitto ({log})")
        assert status["version"] == _version(wheels["mycontroller_edge"])
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=30)
    assert code == 0, log.read_text()
    done = _run(edge_bin / "mycontroller-edge", "status", "--config", config, cwd=tmp_path, env=_clean_env())
    assert f"version {status['version']}" in done.stdout and "stopped at" in done.stdout


# ------------------------------------------------------------------------------------------------- server

def _get(base: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_server_wheel_serves_the_console_and_the_simulator(server_bin: Path, wheels: dict[str, Path],
                                                           tmp_path: Path) -> None:
    version = _version(wheels["mycontroller"])
    done = _run(server_bin / "mycontroller", "--version", cwd=tmp_path, env=_clean_env())
    assert done.stdout.strip() == f"mycontroller {version}"
    port, data = free_port(), tmp_path / "home"
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([server_bin / "mycontroller", "serve", "--port", str(port), "--data-dir", data],
                                  cwd=tmp_path, env=_clean_env(MC_ADMIN_PASSWORD=ADMIN_PASSWORD), stdout=out,
                                  stderr=out)
    try:
        wait_for(lambda: _get(base, "/api/status")[0] == 200, 60, f"the server ({log})")
        token = json.loads(_get(base, "/api/user/login", body={"username": "admin",
                                                               "password": ADMIN_PASSWORD})[1])["token"]
        assert json.loads(_get(base, "/api/version", token)[1])["version"] == version
        wait_for(lambda: "sim.1.1.V_TEMP" in {f["id"] for f in json.loads(_get(base, "/api/field?limit=0",
                                                                                 token)[1])["data"]},
                 30, "the simulator's fields")
        status, page = _get(base, "/")
        assert status == 200 and b'<div id="root">' in page and b"not built" not in page, page[:300]
        assets = re.findall(rb'(?:src|href)="(/assets/[^"]+)"', page)
        assert assets, page[:500]
        for asset in assets:
            assert _get(base, asset.decode())[0] == 200
    finally:
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    assert (data / "repository.sqlite3").is_file()
