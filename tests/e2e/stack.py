"""`make run` for the end-to-end tests: the stack as a subprocess on its own port, and calls to its REST API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN_PASSWORD = "e2e-Harbor-Lantern-7"
"""What ``make run`` gets as ``MC_ADMIN_PASSWORD``: the first admin's password."""
TOKENS: dict[str, str] = {}


def token(base: str) -> str:
    """A login token for the stack at ``base`` (logged in once per stack)."""
    if base not in TOKENS:
        TOKENS[base] = request(base, "/api/user/login", {"username": "admin", "password": ADMIN_PASSWORD},
                               auth=False)["token"]
    return TOKENS[base]


def request(base: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {token(base)}"
    req = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not up yet
            last_error = error
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


class Stack:
    def __init__(self, data_dir: Path, *make_args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MC_PORT": str(self.port), "DATA_DIR": str(data_dir), "MC_ADMIN_PASSWORD": ADMIN_PASSWORD}
        self.log = (data_dir.parent / f"stack-{self.port}.log").open("wb")
        self.process = subprocess.Popen(["make", "--no-print-directory", "run", *make_args], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: request(self.base, "/api/status", auth=False)["status"] == "ok", 120, "/api/status")

    def stop(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.log.close()
