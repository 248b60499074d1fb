"""Handler secrets through the API: stored encrypted (``enc:v1:``), never answered or logged, an encrypted value
accepted only where it is the stored one; the handler function then runs with the clear secret."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import Kind
from tests.integration.api_helpers import Api

TOKEN = "987654:telegram-bot-secret"
TELEGRAM = {"id": "tg", "type": "telegram", "spec": {"token": TOKEN, "chatIds": ["5"]}}


class Recorder:
    def __init__(self) -> None:
        self.specs: list[dict[str, Any]] = []

    def execute(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.specs.append(spec)
        return {}


def test_secrets_are_encrypted_at_rest_and_only_the_handler_function_sees_them(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [api.ok("POST", "/api/handler", TELEGRAM), api.ok("GET", "/api/handler/tg"),
               api.ok("GET", "/api/handler")]
    stored = api.container.repository.get(Kind.HANDLER, "tg")
    assert stored is not None and stored["spec"]["token"].startswith("enc:v1:")
    # the placeholder keeps the stored ciphertext as it is (not encrypted twice)
    api.ok("POST", "/api/handler", {**answers[1], "description": "edited"})
    assert api.container.repository.get(Kind.HANDLER, "tg")["spec"]["token"] == stored["spec"]["token"]  # type: ignore[index]
    # a ciphertext from elsewhere is refused, naming the field
    status, data, _ = api.call("POST", "/api/handler", {**TELEGRAM, "spec": {"token": "enc:v1:AAAA", "chatIds": []}})
    assert (status, data["field"]) == (400, "spec.token")
    recorder = Recorder()
    function = api.container.with_parts(idempotency=SqlitePersistenceLayer(":memory:"),
                                        executors={"telegram": recorder}).handler_function
    assert function.run(HandlerRequest("tg", {"m": "hello"}, "t1").to_dict()).status == "ok"
    assert recorder.specs[0]["token"] == TOKEN
    everything = json.dumps(answers) + json.dumps([e.detail for e in api.events]) + caplog.text + json.dumps(
        [r.__dict__ for r in caplog.records], default=str) + json.dumps(api.container.repository.get(Kind.HANDLER,
                                                                                                   "tg"))
    assert "telegram-bot-secret" not in everything
