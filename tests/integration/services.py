"""Real services for integration tests, each a private process on 127.0.0.1 with its data under a tmp dir.

``start_victoria_metrics(tmp_path) -> (url, stop)`` and ``start_mosquitto(tmp_path) -> (host, port, stop)``;
``RecordingHttpServer`` (an in-process webhook receiver that records what it is sent).
Both raise ``ServiceUnavailable`` when the binary is not installed; the fixtures (``tests/integration/conftest.py``)
hand that to ``unavailable``, which skips with the reason on a developer's machine and FAILS under CI (``CI=true``,
set by ``.ci/run``), where every service must be installed: a test that needs one cannot pass by being skipped.
Any other start failure is an error naming the log file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class ServiceUnavailable(RuntimeError):
    """The service's binary is not installed on this machine (``unavailable`` says what a test does about it)."""


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set to anything but empty, 0, false or no; GitHub and ``.ci/run`` say true)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """A test cannot run because something it needs is missing: skip with the reason, or fail under CI."""
    import pytest  # here: the bench imports this module's services without the test tools

    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service fails the test; .ci/run installs it)", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str, *fallbacks: str) -> str:
    """The path of an installed program, else ``unavailable`` (skip, or fail under CI)."""
    try:
        return find_binary(name, *fallbacks)
    except ServiceUnavailable as error:
        unavailable(str(error))


def free_port() -> int:
    """A loopback TCP port free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in fallbacks:
        if Path(candidate).is_file():
            return candidate
    raise ServiceUnavailable(f"{name} is not installed (apt-get install {name})")


def _stopper(process: subprocess.Popen[bytes]) -> Callable[[], None]:
    """Terminate the process (kill if it lingers); safe to call twice."""

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)

    return stop


def _wait(process: subprocess.Popen[bytes], ready: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        if ready():
            return
        time.sleep(0.05)
    _stopper(process)()
    raise RuntimeError(f"{what} was not ready within {START_TIMEOUT_S}s; see {log}")


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
        return True
    return False


def start_victoria_metrics(tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A single-node VictoriaMetrics; returns its base URL (``http://127.0.0.1:<port>``) and a stop function.

    It takes InfluxDB line protocol on ``/api/v2/write`` and exports on ``/api/v1/export``; retention is 100
    years so that tests may write fixed timestamps in the past.
    """
    binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    workdir = tmp_path / "victoria-metrics"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "victoria-metrics.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={workdir / 'data'}",
             "-retentionPeriod=100y", "-search.disableCache", "-loggerLevel=WARN"],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL)

    def healthy() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=0.5) as response:
            return bool(response.status == 200)
        return False

    _wait(process, healthy, "victoria-metrics", log)
    return url, _stopper(process)


def start_mosquitto(tmp_path: Path) -> tuple[str, int, Callable[[], None]]:
    """A private anonymous mosquitto on 127.0.0.1; returns host, port and a stop function."""
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir(parents=True, exist_ok=True)
    host, port = "127.0.0.1", free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} {host}\nallow_anonymous true\npersistence false\n")
    log = workdir / "mosquitto.log"
    with open(log, "ab") as out:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    _wait(process, lambda: _listening(host, port), "mosquitto", log)
    return host, port, _stopper(process)


def start_http_server(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded HTTP server on a free loopback port (webhook receivers, fake bot APIs); its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="test-http", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop_http_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class RecordingHttpServer:
    """A webhook receiver on a free loopback port: every request (``method``, ``path``, ``query`` as lists,
    ``headers``, ``body`` bytes) is appended to ``requests`` and answered ``status`` with the body ``ok``;
    ``url`` is its base URL, ``stop()`` shuts it down."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                recorder.requests.append({"method": self.command, "path": parts.path,
                                          "query": parse_qs(parts.query), "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                self.send_response(recorder.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = do_GET = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.http, self.url = start_http_server(Handler)

    def stop(self) -> None:
        stop_http_server(self.http)
