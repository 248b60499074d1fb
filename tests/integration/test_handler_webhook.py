"""A webhook handler, through the local handler queue, reaches a real HTTP server with the rendered body, method,
headers and query; a redelivered trigger reaches it once; an unexpected status is retried, then dead-lettered.

Under the outbound policy: a webhook to this machine is refused (recorded at once, never retried) until the system
settings allow it; a webhook variable redirected to a refused address is refused; an answer too large is cut."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.handler_queue_local import LocalHandlerQueue
from chalicelib.adapters.handler_webhook import WebhookExecutor
from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.secrets_local import LocalSecretBox
from chalicelib.adapters.webhook_urllib import UrllibWebhookResolver, WebhookError
from chalicelib.core.automation.handler_secrets import encrypt_spec
from chalicelib.core.automation.handlers import render_parameters
from chalicelib.core.automation.models import WebhookCall
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import Kind
from chalicelib.core.outbound import OutboundPolicy, PolicySource
from chalicelib.core.settings import Outbound, SystemSettings
from chalicelib.functions.handlers import HandlerFunction
from tests.integration.services import RecordingHttpServer, start_http_server, stop_http_server


@pytest.fixture
def server() -> Iterator[RecordingHttpServer]:
    running = RecordingHttpServer()
    yield running
    running.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[MemoryRepository, LocalHandlerQueue, LocalSecretBox]]:
    repository = MemoryRepository(None, dump_interval_s=0)
    box = LocalSecretBox(tmp_path / "secret.key")
    function: list[HandlerFunction] = []
    queue = LocalHandlerQueue(lambda event, context: function[0].handle(event, context),
                              dead_letter_path=tmp_path / "handler-dead-letters.jsonl", max_receive_count=3,
                              backoff_s=0.1)
    policy = PolicySource(repository, private=True, ttl_s=0)  # as the container builds it, re-read each call
    function.append(HandlerFunction(repository, {"webhook": WebhookExecutor(policy)},
                                    SqlitePersistenceLayer(tmp_path / "runs.sqlite3"), secrets=box, queue=queue))
    queue.start()
    yield repository, queue, box
    queue.stop(timeout=5)


def allow(repository: MemoryRepository, *entries: str) -> None:
    """The system settings' ``outbound.allow``, as ``POST /api/settings/system`` stores it."""
    repository.put(Kind.SETTINGS, SystemSettings(outbound=Outbound(allow=list(entries))).record())


def add_webhook(repository: MemoryRepository, box: LocalSecretBox, spec: dict[str, Any]) -> None:
    repository.put(Kind.HANDLER, {"id": "hook", "type": "webhook", "enabled": True, "labels": {},
                                  "spec": encrypt_spec("hook", "webhook", spec, box)})


PARAMETERS = {"alert": {"type": "webhook", "method": "PUT",
                        "body": {"room": "{{ room }}", "temperature": "{{ temp }}"},
                        "query": {"room": "{{ room }}"}, "headers": {"X-Reason": "hot {{ room }}"}}}


def test_webhook_reaches_the_server_with_the_rendered_request_once_per_trigger(server: RecordingHttpServer,
                                                                               stack: Any) -> None:
    repository, queue, box = stack
    allow(repository, "127.0.0.1")
    add_webhook(repository, box, {"url": f"{server.url}/hooks/alert", "queryParameters": {"source": "mc"},
                                  "headers": {"Authorization": "Bearer hook-token"}})
    rendered = render_parameters(PARAMETERS, {"room": "kitchen", "temp": 31.5}, now=datetime.now(UTC))
    request = HandlerRequest("hook", rendered, "field:g.1.1.V_TEMP@42", "task:hot").to_dict()
    queue.send([request])
    queue.send([request])  # the producer sent it twice (at-least-once)
    assert queue.drain(10)
    assert len(server.requests) == 1
    got = server.requests[0]
    assert got["method"] == "PUT" and got["path"] == "/hooks/alert"
    assert got["query"] == {"source": ["mc"], "room": ["kitchen"]}
    assert got["headers"]["X-Reason"] == "hot kitchen" and got["headers"]["Authorization"] == "Bearer hook-token"
    assert got["headers"]["Content-Type"] == "application/json"
    assert json.loads(got["body"]) == {"room": "kitchen", "temperature": "31.5"}
    state = repository.get(Kind.HANDLER, "hook")["state"]
    assert state["status"] == "ok" and state["executedCount"] == 1


def test_unexpected_status_is_retried_then_dead_lettered(server: RecordingHttpServer, stack: Any,
                                                         tmp_path: Path) -> None:
    repository, queue, box = stack
    allow(repository, "127.0.0.0/8")
    server.status = 500
    add_webhook(repository, box, {"url": f"{server.url}/hooks/alert", "expectedStatus": 200})
    request = HandlerRequest("hook", {"alert": "text body"}, "trigger-1", "schedule:s").to_dict()
    queue.send([request])
    assert queue.drain(15)
    assert len(server.requests) == 3  # max_receive_count deliveries
    assert [r["body"] for r in server.requests] == [b"text body"] * 3
    letters = [json.loads(line) for line in (tmp_path / "handler-dead-letters.jsonl").read_text().splitlines()]
    assert [json.loads(letter["body"]) for letter in letters] == [request]
    state = repository.get(Kind.HANDLER, "hook")["state"]
    assert state["status"] == "error" and "status 500, expected 200" in state["message"]
    assert state["errorCount"] == 3
    # the server recovers and the dead letter is redriven: it runs now (the failures were not remembered as done)
    server.status = 200
    queue.send([request])
    assert queue.drain(10)
    assert len(server.requests) == 4 and repository.get(Kind.HANDLER, "hook")["state"]["status"] == "ok"


def test_a_webhook_to_this_machine_is_refused_with_a_clear_error_until_the_settings_allow_it(
        server: RecordingHttpServer, stack: Any, tmp_path: Path) -> None:
    repository, queue, box = stack
    add_webhook(repository, box, {"url": f"{server.url}/hooks/alert?key=secret-key"})
    queue.send([HandlerRequest("hook", {"alert": "hot"}, "trigger-1", "task:t").to_dict()])
    assert queue.drain(10)
    state = repository.get(Kind.HANDLER, "hook")["state"]
    assert server.requests == [] and state["status"] == "error" and state["errorCount"] == 1
    said = state["message"]
    assert (f"POST http://127.0.0.1:{server.url.rsplit(':', 1)[1]}/hooks/alert: refused: 127.0.0.1 is a loopback "
            "address, not allowed: add the host or its network to the system settings' outbound.allow") in said
    assert "secret-key" not in state["message"] and "will retry" not in state["message"]
    assert not (tmp_path / "handler-dead-letters.jsonl").exists()  # nothing to retry: it cannot succeed
    allow(repository, "127.0.0.1")
    queue.send([HandlerRequest("hook", {"alert": "hot"}, "trigger-2", "task:t").to_dict()])
    assert queue.drain(10)
    assert len(server.requests) == 1 and repository.get(Kind.HANDLER, "hook")["state"]["status"] == "ok"


class _Redirector(BaseHTTPRequestHandler):
    """Answers every GET with a redirect to ``target`` or, at /big, with an endless body."""

    target = ""
    sent = 0

    def do_GET(self) -> None:
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            chunk = b" " * 65536
            try:
                for _ in range(1600):  # 100 MB, unless the client hangs up first
                    self.wfile.write(chunk)
                    type(self).sent += len(chunk)
            except OSError:
                pass
            return
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirect_to_a_refused_address_is_refused(server: RecordingHttpServer) -> None:
    """The first hop is allowed (its name is listed); the redirect goes to an address nobody listed."""
    redirector, url = start_http_server(_Redirector)
    try:
        _Redirector.target = f"{server.url}/inside"
        resolver = UrllibWebhookResolver(policy=lambda: OutboundPolicy.allowing("localhost"))
        port = url.rsplit(":", 1)[1]
        with pytest.raises(WebhookError) as refused:
            resolver.fetch("w", WebhookCall(url=f"http://localhost:{port}/go"), {})
        assert "refused: 127.0.0.1 is a loopback address" in str(refused.value) and server.requests == []
        allowed = UrllibWebhookResolver(policy=lambda: OutboundPolicy.allowing("localhost", "127.0.0.1"))
        assert allowed.fetch("w", WebhookCall(url=f"http://localhost:{port}/go"), {}) == "ok"
        assert [r["path"] for r in server.requests] == ["/inside"]
    finally:
        stop_http_server(redirector)


def test_an_oversize_answer_is_cut(stack: Any) -> None:
    """The webhook variable reads at most 1 MB and the handler 64 kB of a 100 MB answer, then hang up."""
    redirector, url = start_http_server(_Redirector)
    try:
        started = time.monotonic()
        resolver = UrllibWebhookResolver(policy=lambda: OutboundPolicy.allowing("127.0.0.1"))
        with pytest.raises(WebhookError, match="answer larger than 1048576 bytes"):
            resolver.fetch("w", WebhookCall(url=f"{url}/big"), {})
        handler = WebhookExecutor(lambda: OutboundPolicy.allowing("127.0.0.1"))
        assert handler.execute({}, {"url": f"{url}/big", "method": "GET"}) == {"status": 200}
        assert time.monotonic() - started < 10
        time.sleep(0.5)
        assert _Redirector.sent < 20 * 1024 * 1024  # the rest was never asked for
    finally:
        stop_http_server(redirector)
