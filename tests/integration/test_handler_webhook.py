"""A webhook handler, through the local handler queue, reaches a real HTTP server with the rendered body, method,
headers and query; a redelivered trigger reaches it once; an unexpected status is retried, then dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.handler_queue_local import LocalHandlerQueue
from chalicelib.adapters.handler_webhook import WebhookExecutor
from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.secrets_local import LocalSecretBox
from chalicelib.core.automation.handler_secrets import encrypt_spec
from chalicelib.core.automation.handlers import render_parameters
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import Kind
from chalicelib.functions.handlers import HandlerFunction
from tests.integration.services import RecordingHttpServer


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
    function.append(HandlerFunction(repository, {"webhook": WebhookExecutor()},
                                    SqlitePersistenceLayer(tmp_path / "runs.sqlite3"), secrets=box, queue=queue))
    queue.start()
    yield repository, queue, box
    queue.stop(timeout=5)


def add_webhook(repository: MemoryRepository, box: LocalSecretBox, spec: dict[str, Any]) -> None:
    repository.put(Kind.HANDLER, {"id": "hook", "type": "webhook", "enabled": True, "labels": {},
                                  "spec": encrypt_spec("hook", "webhook", spec, box)})


PARAMETERS = {"alert": {"type": "webhook", "method": "PUT",
                        "body": {"room": "{{ room }}", "temperature": "{{ temp }}"},
                        "query": {"room": "{{ room }}"}, "headers": {"X-Reason": "hot {{ room }}"}}}


def test_webhook_reaches_the_server_with_the_rendered_request_once_per_trigger(server: RecordingHttpServer,
                                                                               stack: Any) -> None:
    repository, queue, box = stack
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
