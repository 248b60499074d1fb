"""The local stack wires the handler queue: a request queued through ``container.handler_queue`` runs the webhook
handler (secret decrypted from the stack's key file) and its state shows in the repository."""

from __future__ import annotations

import json
import sqlite3
import stat
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.integration.services import RecordingHttpServer, free_port


def allow_this_machine(repository: Any) -> None:
    """The system settings let handlers reach the receiver on 127.0.0.1 (refused otherwise: loopback)."""
    from chalicelib.core.model import Kind
    from chalicelib.core.settings import Outbound, SystemSettings

    repository.put(Kind.SETTINGS, SystemSettings(outbound=Outbound(allow=["127.0.0.1"])).record())


def test_local_stack_runs_queued_handler_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"DATA_DIR": str(tmp_path / "data"), "POWERTOOLS_TRACE_DISABLED": "true",
                        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
                        "POWERTOOLS_SERVICE_NAME": "mycontroller-local", "AWS_DEFAULT_REGION": "us-east-1",
                        "HANDLER_QUEUE": "local", "SECRETS": "local"}.items():
        monkeypatch.setenv(name, value)
    from chalicelib.core.automation.handler_secrets import encrypt_spec
    from chalicelib.core.automation.tasks import HandlerRequest
    from chalicelib.core.model import Kind
    from chalicelib.local.stack import LocalStack

    server = RecordingHttpServer()
    stack = LocalStack("127.0.0.1", free_port(), tmp_path / "data", [])
    stack.start()
    try:
        services = stack.container
        allow_this_machine(services.repository)
        spec = encrypt_spec("hook", "webhook", {"url": f"{server.url}/in", "headers": {"X-Api-Key": "k-secret"}},
                            services.secrets)
        services.repository.put(Kind.HANDLER, {"id": "hook", "type": "webhook", "enabled": True, "spec": spec})
        assert services.handler_queue is not None
        services.handler_queue.send([HandlerRequest("hook", {"a": "hello"}, "t1", "task:x").to_dict()])
        assert stack.handler_queue.drain(10)  # type: ignore[union-attr]
    finally:
        stack.stop()
        server.stop()
    assert [(r["path"], r["body"], r["headers"]["X-Api-Key"]) for r in server.requests] == [("/in", b"hello",
                                                                                            "k-secret")]
    key = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with closing(sqlite3.connect(tmp_path / "data" / "repository.sqlite3")) as db:  # what the stack stored
        dumped = "".join(doc for (doc,) in db.execute("SELECT doc FROM records"))
    assert "k-secret" not in dumped and "enc:v1:" in dumped
    assert json.dumps("hook") in dumped and (tmp_path / "data" / "handler-runs.sqlite3").exists()


def test_a_temperature_over_the_threshold_fires_a_task_whose_webhook_gets_the_rendered_body(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's end-to-end path in the local stack: field updated on the bus → task → handler queue → webhook."""
    for name, value in {"DATA_DIR": str(tmp_path / "data"), "POWERTOOLS_TRACE_DISABLED": "true",
                        "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
                        "AWS_DEFAULT_REGION": "us-east-1", "HANDLER_QUEUE": "local", "SECRETS": "local"}.items():
        monkeypatch.setenv(name, value)
    import time

    from chalicelib.core.model import FieldModel, Kind, MetricType, Payload, event
    from chalicelib.core.ports import bus_event
    from chalicelib.local.stack import LocalStack

    server = RecordingHttpServer()
    stack = LocalStack("127.0.0.1", free_port(), tmp_path / "data", [])
    stack.start()
    try:
        repository = stack.container.repository
        allow_this_machine(repository)
        repository.put(Kind.HANDLER, {"id": "hook", "type": "webhook", "enabled": True,
                                      "spec": {"url": f"{server.url}/alert"}})
        repository.put(Kind.TASK, {
            "id": "hot", "triggerOnEvent": True, "handlers": ["hook"],
            "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"], "filters": {"fieldId": "V_TEMP"}},
            "evaluationConfig": {"rule": {"matchAll": True, "conditions": [
                {"variable": "entity.current.value", "operator": "gt", "value": "30"}]}},
            "handlerParameters": {"alert": {"type": "webhook",
                                            "body": {"room": "kitchen", "temperature": "{{ entity.current.value }}"}}}})
        for temperature in (21.0, 31.5):
            field = FieldModel(gateway_id="g", node_id="1", source_id="1", field_id="V_TEMP",
                               metric_type=MetricType.GAUGE_FLOAT, current=Payload(value=temperature)).record()
            stack.container.bus.publish([bus_event(event("updated", Kind.FIELD, field))])
        deadline = time.monotonic() + 15
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stack.handler_queue.drain(10)  # type: ignore[union-attr]
    finally:
        stack.stop()
        server.stop()
    assert [json.loads(r["body"]) for r in server.requests] == [{"room": "kitchen", "temperature": "31.5"}]
