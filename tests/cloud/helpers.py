"""What the cloud tests drive the twin with: the running twin, its REST API, devices, a webhook receiver.

``CloudTwin`` is one ``python -m infra.twin`` process (the session fixture starts it once); ``Device`` is a thing
provisioned against it with ``infra.provision`` exactly as on AWS, and its edge agent (``python -m edge``) with a
MySensors serial gateway on a pseudo-terminal. Everything talks to the twin over its public endpoints only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.integration.gateway_helpers import PtyDevice

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "twin-admin-password"
START_TIMEOUT_S = 120.0


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class CloudTwin:
    """One twin process on a template; ``info`` is its ``twin.json``."""

    def __init__(self, template: Path, workdir: Path, stack: str = "mc-twin-tests") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.info_path = workdir / "twin.json"
        self.log_path = workdir / "twin.log"
        self.stack = stack
        env = {**os.environ, "MC_ADMIN_PASSWORD": ADMIN_PASSWORD, "PYTHONPATH": str(ROOT)}
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.twin", "--template", str(template), "--stack", stack,
             "--state-dir", str(workdir / "state"), "--info", str(self.info_path), "--retry-after", "1"],
            cwd=ROOT, env=env, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.info_path.is_file():
            if self.process.poll() is not None:
                raise RuntimeError(f"the twin exited ({self.process.returncode}):\n{self.log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the twin did not start in {START_TIMEOUT_S:.0f}s:\n"
                                   f"{self.log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        self.info: dict[str, Any] = json.loads(self.info_path.read_text())
        self.token = ""
        self.refusals_at_start = self.refusals()
        """What the twin refused while wiring the template (a rule its queue's policy does not let send...)."""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # ------------------------------------------------------------------------------------------- endpoints

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.info['aws_endpoint']}/_twin/status", timeout=30) as response:
            status: dict[str, Any] = json.loads(response.read())
        return status

    def refusals(self) -> list[dict[str, Any]]:
        return list(self.status()["refusals"])

    def aws_env(self) -> dict[str, str]:
        """The environment of an operator's shell pointed at the twin (as the ready line says)."""
        return {"AWS_ENDPOINT_URL": self.info["aws_endpoint"], "MC_IOT_ROOT_CA": self.info["iot_ca"],
                "AWS_ACCESS_KEY_ID": "operator", "AWS_SECRET_ACCESS_KEY": "operator",
                "AWS_DEFAULT_REGION": self.info["region"], "PYTHONPATH": str(ROOT)}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.info["aws_endpoint"], region_name=self.info["region"],
                            aws_access_key_id="operator", aws_secret_access_key="operator")

    def api(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        """One REST call on the twin's API Gateway (``info["api"]`` + path); ``(status, JSON or text)``."""
        token = self.token if token is None else token
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.info["api"] + path, method=method, headers=headers,
                                         data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.api(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def login(self) -> str:
        status, answer = self.api("POST", "/api/user/login", {"username": "admin", "password": ADMIN_PASSWORD},
                                  token="")
        assert status == 200, f"login: {status} {answer}"
        self.token = answer["token"]
        return self.token


class Device:
    """A thing provisioned against the twin, and (``start``) its edge agent with a MySensors serial gateway."""

    def __init__(self, twin: CloudTwin, thing: str, workdir: Path, gateway: str = "serial1") -> None:
        self.twin = twin
        self.thing = thing
        self.gateway = gateway
        self.dir = workdir / thing
        shutil.rmtree(self.dir, ignore_errors=True)
        result = subprocess.run([sys.executable, "-m", "infra.provision", "--thing", thing, "--stack", twin.stack,
                                 "--out-dir", str(self.dir)], cwd=workdir, env={**os.environ, **twin.aws_env()},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"provision {thing}: {result.stdout}\n{result.stderr}"
        self.provision_output = result.stdout
        self.config = yaml.safe_load((self.dir / "edge.yaml").read_text())
        self.pty: PtyDevice | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Device:
        self.pty = PtyDevice(self.dir / "ttyMySensors")
        config = dict(self.config)
        config["gateways"] = [{"id": self.gateway, "provider": {
            "type": "mysensors_v2", "protocol": {"type": "serial", "portname": str(self.pty.link),
                                                 "baudRate": 115200}}}]
        (self.dir / "edge.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = self.dir / "edge.log"
        self.process = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(self.dir / "edge.yaml")],
                                        cwd=self.dir, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                        stdout=self.log_path.open("w"), stderr=subprocess.STDOUT)
        wait_until(lambda: '"uplink subscribed"' in self.log_path.read_text(), 60, f"{self.thing}'s agent subscribed")
        return self

    def write(self, *lines: str) -> None:
        assert self.pty is not None
        self.pty.write("".join(f"{line}\n" for line in lines))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.pty is not None and self.pty.master >= 0:
            with contextlib.suppress(OSError):
                self.pty.unplug()


class Webhook:
    """A local HTTP server recording what handlers send it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append({"path": self.path, "body": self.rfile.read(length).decode(errors="replace"),
                                 "authorization": self.headers.get("Authorization")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
