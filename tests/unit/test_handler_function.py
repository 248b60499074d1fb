"""The handler function: each trigger runs a handler once, failures retry only what failed, bad parameters are
recorded without a retry, delays re-queue, state is kept, secrets are decrypted only here and never logged."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.secrets_local import LocalSecretBox
from chalicelib.core.automation.handler_secrets import encrypt_spec
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import Kind
from chalicelib.core.ports import HandlerCallError
from chalicelib.functions.handlers import BadRequest, HandlerFunction, RetryLater

SECRET = "tg-very-secret-token"


class Recorder:
    """An executor that records its calls and fails as told (by parameter name)."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.fail: dict[str, HandlerCallError] = {}

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((spec, params))
        error = self.fail.get(str(params.get("text") or params.get("body")))
        if error is not None:
            raise error
        return {"ok": True}


class DelayQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], float]] = []

    def send(self, requests: Any) -> None:
        self.send_delayed(requests, 0)

    def send_delayed(self, requests: Any, delay_seconds: float) -> None:
        self.sent += [(dict(r), delay_seconds) for r in requests]


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    repository = MemoryRepository(None, dump_interval_s=0)
    box = LocalSecretBox(tmp_path / "secret.key")
    recorder = Recorder()
    queue = DelayQueue()
    clock = [1_000_000.0]
    function = HandlerFunction(repository, {"telegram": recorder, "webhook": recorder, "resource": recorder},
                               SqlitePersistenceLayer(":memory:"), secrets=box, queue=queue,
                               clock=lambda: clock[0])

    def add(handler_id: str, handler_type: str, spec: dict[str, Any], enabled: bool = True) -> None:
        spec = encrypt_spec(handler_id, handler_type, spec, box)
        repository.put(Kind.HANDLER, {"id": handler_id, "type": handler_type, "spec": spec, "enabled": enabled,
                                      "labels": {}, "state": {"status": "unavailable"}})

    return function, repository, recorder, queue, add, clock


def request(handler_id: str, parameters: dict[str, Any], trigger: str = "t1") -> dict[str, Any]:
    return HandlerRequest(handler_id, parameters, trigger, "task:hot").to_dict()


def test_a_trigger_runs_a_handler_once_with_its_secret_decrypted(setup: Any) -> None:
    function, repository, recorder, _, add, _ = setup
    add("tg", "telegram", {"token": SECRET, "chatIds": ["42"]})
    assert repository.get(Kind.HANDLER, "tg")["spec"]["token"].startswith("enc:v1:")
    first = function.run(request("tg", {"alert": "hot: 31.5"}))
    again = function.run(request("tg", {"alert": "hot: 31.5"}))
    assert (first.status, first.duplicate, again.status, again.duplicate) == ("ok", False, "ok", True)
    assert len(recorder.calls) == 1
    spec, params = recorder.calls[0]
    assert spec["token"] == SECRET and params == {"chatIds": ["42"], "text": "hot: 31.5", "parseMode": ""}
    state = repository.get(Kind.HANDLER, "tg")["state"]
    assert state["status"] == "ok" and state["lastStatus"] == "ok" and state["executedCount"] == 1
    assert state["lastRun"] and state["since"]
    # another trigger runs it again
    function.run(request("tg", {"alert": "hot again"}, trigger="t2"))
    assert len(recorder.calls) == 2 and repository.get(Kind.HANDLER, "tg")["state"]["executedCount"] == 2


def test_missing_and_disabled_handlers_are_skipped(setup: Any) -> None:
    function, _, recorder, _, add, _ = setup
    add("off", "telegram", {"token": SECRET, "chatIds": ["1"]}, enabled=False)
    assert function.run(request("off", {"a": "x"})).status == "skipped"
    assert function.run(request("nobody", {"a": "x"})).status == "skipped"
    assert recorder.calls == []


def test_bad_parameters_are_recorded_and_not_retried(setup: Any) -> None:
    function, repository, recorder, _, add, _ = setup
    add("hook", "webhook", {})  # no URL anywhere
    outcome = function.run(request("hook", {"alert": "body"}))
    assert outcome.status == "error" and "no url" in outcome.errors[0]
    assert recorder.calls == []
    state = repository.get(Kind.HANDLER, "hook")["state"]
    assert state["status"] == "error" and "no url" in state["message"] and state["errorCount"] == 1
    assert function.run(request("hook", {"alert": "body"})).duplicate  # stored as done: a redelivery is a no-op


def test_a_retryable_failure_fails_the_run_and_the_retry_runs_only_what_failed(setup: Any) -> None:
    function, repository, recorder, _, add, _ = setup
    add("tg", "telegram", {"token": SECRET, "chatIds": ["1"]})
    recorder.fail["second"] = HandlerCallError("telegram: status 502")
    with pytest.raises(RetryLater):
        function.run(request("tg", {"a": "first", "b": "second"}))
    assert [p["text"] for _, p in recorder.calls] == ["first", "second"]
    state = repository.get(Kind.HANDLER, "tg")["state"]
    assert state["status"] == "error" and "will retry" in state["message"] and "b: telegram: status 502" in \
        state["message"]
    del recorder.fail["second"]
    assert function.run(request("tg", {"a": "first", "b": "second"})).status == "ok"
    assert [p["text"] for _, p in recorder.calls] == ["first", "second", "second"]  # "first" not sent twice
    assert function.run(request("tg", {"a": "first", "b": "second"})).duplicate


def test_a_permanent_call_failure_is_recorded_and_not_retried(setup: Any) -> None:
    function, repository, recorder, _, add, _ = setup
    add("tg", "telegram", {"token": SECRET, "chatIds": ["1"]})
    recorder.fail["x"] = HandlerCallError(f"telegram: status 401 bad token {SECRET}", retryable=False)
    outcome = function.run(request("tg", {"a": "x"}))
    assert outcome.status == "error"
    state = repository.get(Kind.HANDLER, "tg")["state"]
    assert SECRET not in json.dumps(state) and "********" in state["message"]


def test_poison_requests_fail_their_record_only(setup: Any) -> None:
    function, _, recorder, _, add, _ = setup
    add("tg", "telegram", {"token": SECRET, "chatIds": ["1"]})
    with pytest.raises(BadRequest):
        function.run({"parameters": {}})
    records = [{"messageId": "good", "receiptHandle": "r1", "body": json.dumps(request("tg", {"a": "hi"})),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn",
                "awsRegion": "us-east-1"},
               {"messageId": "bad", "receiptHandle": "r2", "body": "{not json", "attributes": {},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn", "awsRegion": "us-east-1"}]
    response = function.handle({"Records": records})
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(recorder.calls) == 1


def test_a_delayed_resource_call_is_requeued_and_runs_when_due(setup: Any) -> None:
    function, _, recorder, queue, add, clock = setup
    add("res", "resource", {})
    parameter = {"type": "resource", "quickId": "task:night", "payload": "disable", "delay": "20m"}
    assert function.run(request("res", {"later": parameter})).status == "ok"
    assert recorder.calls == []
    (delayed, delay), = queue.sent
    assert delay == 900  # SQS's longest delay; the rest on the next hop
    assert delayed["triggerId"] == "t1/delay/later" and delayed["notBefore"] == clock[0] + 1200
    assert delayed["parameters"] == {"later": {"type": "resource", "quickId": "task:night", "payload": "disable"}}
    clock[0] += 900
    assert function.run(delayed).status == "delayed"
    assert queue.sent[-1] == (delayed, 300)
    clock[0] += 300
    assert function.run(delayed).status == "ok"
    assert [p["quickId"] for _, p in recorder.calls] == ["task:night"]


def test_secrets_never_reach_the_logs(setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    function, _, recorder, _, add, _ = setup
    add("hook", "webhook", {"url": "http://example.invalid/x", "password": "pw-secret-123",
                            "headers": {"Authorization": "Bearer bearer-secret-456"}})
    recorder.fail["boom"] = HandlerCallError("echo: Bearer bearer-secret-456 pw-secret-123")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RetryLater):
        function.run(request("hook", {"a": "boom"}))
    function.run(request("hook", {"a": "fine"}, trigger="t9"))
    assert recorder.calls[0][1]["headers"] == {"Authorization": "Bearer bearer-secret-456"}
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert "handler ran" in caplog.text
    assert "bearer-secret-456" not in text and "pw-secret-123" not in text
