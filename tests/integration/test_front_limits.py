"""The local front as an attacker meets it: ``python -m chalicelib.local`` in its own process, real sockets.

A body declared too large is refused before it is read, a chunked one is cut; a thousand half-sent requests hold
neither threads nor memory, are dropped by the request timeout, and everyone else is answered meanwhile; a filter
regex that backtracks for ever elsewhere answers at once; every answer carries the security headers and no CORS
header; the login cookie is ``Secure`` behind HTTPS. The connection cap and CORS for configured origins are checked
on a front in this process."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.services import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "front-limits-password-7"
REQUEST_TIMEOUT_S = 2.0
MB = 1024 * 1024
SECURITY = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")


class Stack:
    """The local stack in a process of its own (no gateways), on a free port."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MC_ADMIN_PASSWORD": PASSWORD, "REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
               "LOG_LEVEL": "WARNING", "DATA_DIR": str(data_dir)}
        env.pop("CORS_ORIGINS", None)
        self.log = (data_dir.parent / "stack.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "chalicelib.local", "--port", str(self.port),
                                         "--no-gateways", "--data-dir", str(data_dir)], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.call("GET", "/api/status")[0] == 200:
                    break
            except OSError:
                pass
            assert self.process.poll() is None and time.monotonic() < deadline, "the stack did not start"
            time.sleep(0.2)
        self.token = self.call("POST", "/api/user/login", {"username": "admin", "password": PASSWORD})[1]["token"]

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, Any, Any]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw, status, got = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, error.headers
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return status, parsed, got

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("front") / "data")
    try:
        yield running
    finally:
        running.stop()


def response_of(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer read off a raw socket (status, headers by lower-case name, body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_soon(sock: socket.socket, timeout: float = 5) -> bool:
    """Whether the server ends the connection within ``timeout`` (what it still says is read and dropped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        return True
    return True


# --------------------------------------------------------------------------------------------- bodies


def test_a_300_mb_body_declared_to_login_is_refused_before_it_is_read(stack: Stack) -> None:
    before = stack.rss()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", stack.port)) as sock:
            sock.sendall(b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 314572800\r\n\r\n")
            sent = 0
            with contextlib.suppress(OSError):  # the server answers and hangs up long before 300 MB
                sock.settimeout(5)
                chunk = b" " * MB
                while sent < 300 * MB:
                    sock.sendall(chunk)
                    sent += len(chunk)
            status, headers, body = response_of(sock)
            assert status == 413 and headers.get("connection") == "close"
            answer = json.loads(body)
            assert answer["field"] == "body" and "314572800 bytes" in answer["message"]
            assert sent < 300 * MB
            assert closed_soon(sock)
    assert stack.rss() - before < 20 * MB


def test_a_chunked_body_is_cut_at_the_limit(stack: Stack) -> None:
    before = stack.rss()
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        sock.sendall(b"POST /api/gateway HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nAuthorization: Bearer " + stack.token.encode() + b"\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"[" * 64 * 1024)
        with contextlib.suppress(OSError):
            sock.settimeout(5)
            for _ in range(16 * 50):  # 50 MB, if nobody stopped it
                sock.sendall(chunk)
        status, _, body = response_of(sock)
        assert status == 413 and "more than 1048576 bytes" in json.loads(body)["message"]
        assert closed_soon(sock)
    assert stack.rss() - before < 20 * MB


def test_a_large_upload_is_read_only_for_a_caller_with_a_token(stack: Stack) -> None:
    """The firmware route takes 16 MB, but not from anyone: 401 before a byte of it is read."""
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:
        sock.sendall(b"POST /api/firmware/upload/fw1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 8000000\r\n\r\n")
        status, headers, _ = response_of(sock)
        assert status == 401 and headers.get("connection") == "close" and "www-authenticate" in headers


def test_a_huge_number_in_a_body_is_a_400_naming_its_field(stack: Stack) -> None:
    raw = b'{"id": "big", "title": "x", "labels": {}, "favorite": ' + b"9" * 5000 + b"}"
    request = urllib.request.Request(stack.base + "/api/dashboard", data=raw, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    answer = json.loads(refused.value.read())
    assert refused.value.code == 400 and answer["field"] == "favorite" and "out of range" in answer["message"]


# --------------------------------------------------------------------------------------------- slow clients


def test_a_thousand_half_sent_requests_are_dropped_by_timeout_while_others_are_answered(stack: Stack) -> None:
    rss, threads = stack.rss(), stack.ps.num_threads()
    socks: list[socket.socket] = []
    try:
        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", stack.port))
            if i % 2:  # a head that never ends
                sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:  # a body that never ends, to the one route anyone may post to
                sock.sendall(b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"username\": ")
            socks.append(sock)
        opened = time.monotonic()
        for _ in range(5):  # everyone else is answered at once
            started = time.perf_counter()
            status, answer, _ = stack.call("GET", "/api/status", timeout=5)
            assert status == 200 and answer["status"] == "ok" and time.perf_counter() - started < 1.0
            assert stack.call("GET", "/api/gateway", token=stack.token, timeout=5)[0] == 200
        assert stack.ps.num_threads() <= threads + 2, "a thread per connection"
        assert stack.rss() - rss < 50 * MB
        selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_ones = set(socks)
        deadline = opened + REQUEST_TIMEOUT_S * 2 + 10
        while open_ones and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # dropped (a half-sent body got a 408 first)
                    selector.unregister(sock)
                    open_ones.discard(sock)
        assert not open_ones, f"{len(open_ones)} of 1000 half-sent requests still open"
        assert time.monotonic() - opened > REQUEST_TIMEOUT_S * 0.8  # by the timeout, not at once
        assert stack.call("GET", "/api/status")[0] == 200
    finally:
        for sock in socks:
            sock.close()


def test_a_catastrophic_regex_filter_answers_at_once_and_holds_no_one_up(stack: Stack) -> None:
    title = "a" * 26 + "!"  # 27 characters: Python's re would backtrack 2^26 times on (a+)+$
    assert stack.call("POST", "/api/dashboard", {"id": "redos", "title": title}, token=stack.token)[0] == 200
    others: list[float] = []

    def other_requests() -> None:
        for _ in range(5):
            started = time.perf_counter()
            stack.call("GET", "/api/status")
            others.append(time.perf_counter() - started)

    side = threading.Thread(target=other_requests)
    started = time.perf_counter()
    side.start()
    query = urllib.parse.urlencode({"filter": json.dumps([{"k": "title", "o": "regex", "v": "(a+)+$"}])})
    status, page, _ = stack.call("GET", f"/api/dashboard?{query}", token=stack.token)
    side.join(10)
    assert status == 200 and page["count"] == 0 and time.perf_counter() - started < 2.0
    assert others and max(others) < 1.0
    query = urllib.parse.urlencode({"filter": json.dumps([{"k": "title", "o": "regex", "v": "^(A+)+!$"}])})
    assert stack.call("GET", f"/api/dashboard?{query}", token=stack.token)[1]["count"] == 1  # case-insensitive
    for pattern, said in (("(unclosed", "invalid regex '(unclosed': missing ), unterminated subpattern at position 0"),
                          (r"(a)\1", "no backreferences")):
        query = urllib.parse.urlencode({"filter": json.dumps([{"k": "title", "o": "regex", "v": pattern}])})
        status, error, _ = stack.call("GET", f"/api/dashboard?{query}", token=stack.token)
        assert status == 400 and error["field"] == "filter" and said in error["message"], error


# --------------------------------------------------------------------------------------------- headers


def test_every_answer_has_the_security_headers_and_no_cors(stack: Stack) -> None:
    origin = {"Origin": "https://evil.example"}
    answers = [stack.call("GET", "/api/status", headers=origin),  # API
               stack.call("POST", "/api/user/login", {"username": "admin", "password": "wrong-password-x"},
                          headers=origin),  # API error
               stack.call("GET", "/api/nowhere", headers=origin),  # no route
               stack.call("GET", "/", headers=origin),  # console
               stack.call("GET", "/assets/missing.js", headers=origin),  # a missing file
               stack.call("GET", "/api/ws", headers=origin)]  # the front's own answer
    for status, _, headers in answers:
        for name in SECURITY:
            assert headers.get(name), (status, name)
        assert headers.get("Access-Control-Allow-Origin") is None, status
    assert answers[2][0] == 404 and answers[5][0] == 426
    assert "default-src 'none'" in answers[0][2]["Content-Security-Policy"]
    assert "script-src 'self'" in answers[3][2]["Content-Security-Policy"]
    assert answers[0][2]["X-Frame-Options"] == "DENY" and answers[0][2]["X-Content-Type-Options"] == "nosniff"
    with socket.create_connection(("127.0.0.1", stack.port)) as sock:  # a refusal of the front itself
        sock.sendall(b"POST /api/user/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        status, headers, _ = response_of(sock)
        assert status == 413 and all(name.lower() in headers for name in SECURITY)


def test_the_login_cookie_is_secure_behind_https_only(stack: Stack) -> None:
    body = {"username": "admin", "password": PASSWORD}
    plain = stack.call("POST", "/api/user/login", body)[2].get("Set-Cookie")
    behind = stack.call("POST", "/api/user/login", body, headers={"X-Forwarded-Proto": "https"})[2].get("Set-Cookie")
    assert plain and "mc_access_token=" in plain and "Secure" not in plain
    assert behind and "; Secure" in behind and "HttpOnly" in behind


# --------------------------------------------------------------------------------------------- in this process


@pytest.fixture
def small_front(tmp_path: Path) -> Iterator[Any]:
    """A front in this process with a cap of 24 connections and CORS for one origin."""
    from chalicelib.adapters.bus_local import LocalEventBus
    from chalicelib.adapters.downlink_local import LocalDownlink
    from chalicelib.adapters.metrics_none import NoMetricStore
    from chalicelib.adapters.repository_memory import MemoryRepository
    from chalicelib.bootstrap import Container
    from chalicelib.local.front import Limits, LocalFront
    from chalicelib.settings import Settings

    settings = Settings(data_dir=tmp_path, cors_origins="https://console.example.org")
    container = Container(settings, repository=MemoryRepository(None, 0), metrics=NoMetricStore(),
                          bus=LocalEventBus("sync"), downlink=LocalDownlink())
    front = LocalFront(container, "127.0.0.1", 0, static_dir=tmp_path,
                       limits=Limits(max_connections=24, request_timeout_s=30))
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.shutdown()
        container.close()


def test_past_the_connection_cap_the_oldest_waiting_connection_makes_room(small_front: Any) -> None:
    port = small_front.port
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    try:
        for sock in socks:
            sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")  # never ends
        assert all(closed_soon(sock, 5) for sock in socks[:6])  # the oldest made room for the newest
        assert not any(closed_soon(sock, 0.05) for sock in socks[6:])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as answer:
            assert answer.status == 200
        assert small_front.connections.evicted >= 7
    finally:
        for sock in socks:
            sock.close()


def test_cors_headers_go_to_the_configured_origin_only(small_front: Any) -> None:
    base = f"http://127.0.0.1:{small_front.port}"

    def get(origin: str) -> Any:
        with urllib.request.urlopen(urllib.request.Request(base + "/api/status", headers={"Origin": origin}),
                                    timeout=5) as answer:
            return answer.headers

    allowed = get("https://console.example.org")
    assert allowed["Access-Control-Allow-Origin"] == "https://console.example.org" and allowed["Vary"] == "Origin"
    assert get("https://evil.example")["Access-Control-Allow-Origin"] is None
    preflight = urllib.request.Request(base + "/api/gateway", method="OPTIONS", headers={
        "Origin": "https://console.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    with urllib.request.urlopen(preflight, timeout=5) as answer:
        assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == "https://console.example.org"
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    refused = urllib.request.Request(base + "/api/gateway", method="OPTIONS", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    with urllib.request.urlopen(refused, timeout=5) as answer:
        assert answer.headers["Access-Control-Allow-Origin"] is None
