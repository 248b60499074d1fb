"""Handler types against real counterparts: a fake telegram bot API server, an SMTP server (aiosmtpd), mosquitto,
and the resource handler setting a field (a downlink) and disabling a task (its schedule entry goes) — all through
the composed handler function, with secrets encrypted at rest."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.bus_local import LocalEventBus
from chalicelib.adapters.downlink_local import LocalDownlink
from chalicelib.adapters.idempotency_sqlite import SqlitePersistenceLayer
from chalicelib.adapters.metrics_none import NoMetricStore
from chalicelib.adapters.repository_memory import MemoryRepository
from chalicelib.adapters.schedules_local import LocalScheduleRegistry
from chalicelib.bootstrap import Container
from chalicelib.core.automation.handler_secrets import encrypt_spec
from chalicelib.core.automation.models import Task
from chalicelib.core.automation.scheduler_sync import sync_task
from chalicelib.core.automation.tasks import HandlerRequest
from chalicelib.core.model import FieldModel, Gateway, Kind, MetricType
from chalicelib.core.ports import BusEvent
from chalicelib.core.settings import Outbound, SystemSettings
from chalicelib.functions.handlers import HandlerFunction
from chalicelib.settings import Settings
from tests.integration.services import free_port, start_http_server, stop_http_server


@pytest.fixture
def services(tmp_path: Path) -> Container:
    """A process whose system settings let handlers reach this machine (the SMTP server and broker below)."""
    container = Container(Settings(data_dir=tmp_path), repository=MemoryRepository(None, dump_interval_s=0),
                          metrics=NoMetricStore(), bus=LocalEventBus("sync"), downlink=LocalDownlink(),
                          schedules=LocalScheduleRegistry(), handler_queue=None)
    allow_loopback(container, True)
    return container


def allow_loopback(services: Container, allowed: bool) -> None:
    outbound = Outbound(allow=["127.0.0.1"] if allowed else [])
    services.repository.put(Kind.SETTINGS, SystemSettings(outbound=outbound).record())


def function_for(services: Container, **options: Any) -> HandlerFunction:
    """The handler function of a process with these handler settings (``EMAIL``, ``TELEGRAM_API_URL``…)."""
    settings = dataclasses.replace(services.settings, **options)
    return services.with_parts(settings, idempotency=SqlitePersistenceLayer(":memory:")).handler_function


def add(services: Container, handler_id: str, handler_type: str, spec: dict[str, Any]) -> None:
    services.repository.put(Kind.HANDLER, {"id": handler_id, "type": handler_type, "enabled": True, "labels": {},
                                           "spec": encrypt_spec(handler_id, handler_type, spec,
                                                                services.secrets)})


def run(function: HandlerFunction, handler_id: str, parameters: dict[str, Any], trigger: str = "t1") -> Any:
    return function.run(HandlerRequest(handler_id, parameters, trigger, "task:test").to_dict())


# --------------------------------------------------------------------------------------------- telegram


class FakeBotApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.calls.append((self.path, body))
                known = body["chat_id"] != "404"
                answer = {"ok": True, "result": {"message_id": len(api.calls)}} if known else \
                    {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
                data = json.dumps(answer).encode()
                self.send_response(200 if known else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.http, self.url = start_http_server(Handler)


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    api = FakeBotApi()
    yield api
    stop_http_server(api.http)


def test_telegram_sends_to_each_chat_through_the_bot_api(services: Container, bot_api: FakeBotApi) -> None:
    function = function_for(services, telegram_api_url=bot_api.url)
    add(services, "tg", "telegram", {"token": "123:bot-secret", "chatIds": ["11", "22"], "parseMode": "HTML"})
    assert "bot-secret" not in json.dumps(services.repository.get(Kind.HANDLER, "tg"))
    assert run(function, "tg", {"alert": "<b>hot</b> kitchen"}).status == "ok"
    assert bot_api.calls == [
        ("/bot123:bot-secret/sendMessage", {"chat_id": "11", "text": "<b>hot</b> kitchen", "parse_mode": "HTML"}),
        ("/bot123:bot-secret/sendMessage", {"chat_id": "22", "text": "<b>hot</b> kitchen", "parse_mode": "HTML"}),
    ]
    # an unknown chat cannot succeed: recorded, not retried, the token not in the message
    outcome = run(function, "tg", {"alert": {"type": "telegram", "chatIds": "404", "text": "x"}}, trigger="t2")
    state = services.repository.get(Kind.HANDLER, "tg")["state"]
    assert outcome.status == "error" and "chat not found" in state["message"] and "bot-secret" not in json.dumps(state)


# --------------------------------------------------------------------------------------------- SMTP


def test_email_goes_through_an_smtp_server(services: Container) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    received: list[Any] = []

    class Collect(MessageHandler):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        function = function_for(services)
        add(services, "mail", "email", {"host": "127.0.0.1", "port": port, "tls": "none", "from": "mc@example.org",
                                        "to": ["ops@example.org"]})
        assert run(function, "mail", {"hot": "The kitchen is at 31.5 °C"}).status == "ok"
    finally:
        controller.stop()
    (message,) = received
    assert message["From"] == "mc@example.org" and message["To"] == "ops@example.org"
    assert message["Subject"] == "MyController: hot"
    assert "The kitchen is at 31.5 °C" in message.get_payload(decode=True).decode()


def test_email_and_mqtt_to_this_machine_are_refused_unless_the_settings_allow_it(services: Container) -> None:
    allow_loopback(services, False)
    function = function_for(services)
    add(services, "mail", "email", {"host": "localhost", "port": free_port(), "tls": "none", "from": "mc@example.org",
                                    "to": ["ops@example.org"]})
    add(services, "pub", "mqtt", {"broker": f"mqtt://127.0.0.1:{free_port()}", "topic": "x"})
    for handler_id in ("mail", "pub"):
        outcome = run(function, handler_id, {"a": "hot"})  # recorded at once, not retried
        message = services.repository.get(Kind.HANDLER, handler_id)["state"]["message"]
        assert outcome.status == "error" and "loopback address, not allowed" in message, message
        assert "outbound.allow" in message


def test_email_without_host_or_ses_is_a_clear_error(services: Container) -> None:
    function = function_for(services)
    add(services, "mail", "email", {"from": "mc@example.org", "to": ["ops@example.org"]})
    outcome = run(function, "mail", {"hot": "x"})
    assert outcome.status == "error" and "no SMTP host" in outcome.errors[0]


# --------------------------------------------------------------------------------------------- MQTT


def test_mqtt_publishes_to_the_handlers_broker(services: Container, mosquitto: tuple[str, int]) -> None:
    import paho.mqtt.client as mqtt

    host, port = mosquitto
    got: list[tuple[str, bytes, bool]] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, message: got.append((message.topic, message.payload, message.retain))
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe("house/#", qos=1)
    try:
        client.connect(host, port)
        client.loop_start()
        assert subscribed.wait(10)
        function = function_for(services)
        add(services, "pub", "mqtt", {"broker": f"mqtt://{host}:{port}", "topic": "house/alerts", "qos": 1})
        assert run(function, "pub", {"a": "hot", "b": {"type": "mqtt", "topic": "house/json",
                                                        "payload": {"t": 31.5}}}).status == "ok"
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert sorted(got) == [("house/alerts", b"hot", False), ("house/json", b'{"t":31.5}', False)]


def test_mqtt_to_a_dead_broker_is_retryable(services: Container) -> None:
    from chalicelib.functions.handlers import RetryLater

    function = function_for(services)
    add(services, "pub", "mqtt", {"broker": f"mqtt://127.0.0.1:{free_port()}", "topic": "x"})
    with pytest.raises(RetryLater):
        run(function, "pub", {"a": "hot"})


# --------------------------------------------------------------------------------------------- resource


def test_resource_handler_sets_a_field_and_disables_a_task(services: Container) -> None:
    repository = services.repository
    repository.put(Kind.GATEWAY, Gateway(id="g", provider={"type": "mysensors_v2"}).record())
    repository.put(Kind.FIELD, FieldModel(gateway_id="g", node_id="1", source_id="3", field_id="V_STATUS",
                                          metric_type=MetricType.BINARY).record())
    task = Task.model_validate({"id": "night", "executionInterval": "1m", "handlers": ["res"]}).record()
    repository.put(Kind.TASK, task)
    assert services.schedules is not None
    sync_task(services.schedules, task)
    assert "task-night" in services.schedules.names()
    events: list[BusEvent] = []
    services.bus.subscribe("spy", {"source": ["mycontroller"]}, events.append)
    function = function_for(services)
    add(services, "res", "resource", {})
    parameters = {"lamp": {"type": "resource", "quickId": "field:g.1.3.V_STATUS", "payload": "on"},
                  "stop": {"type": "resource", "quickId": "task:night", "payload": "disable"}}
    assert run(function, "res", parameters).status == "ok"
    (downlink,) = services.downlink.sent  # type: ignore[attr-defined]
    assert (downlink.gateway_id, downlink.raw) == ("g", "1;3;1;0;2;1")
    assert repository.get(Kind.TASK, "night")["enabled"] is False
    assert "task-night" not in services.schedules.names()
    assert [e.detail_type for e in events] == ["task.updated"]
    # at-least-once: the same trigger again changes nothing and sends nothing
    assert run(function, "res", parameters).duplicate and len(services.downlink.sent) == 1  # type: ignore[attr-defined]
    # a field that does not exist cannot be set: recorded, not retried
    outcome = run(function, "res", {"x": {"type": "resource", "quickId": "field:g.9.9.V_STATUS", "payload": "1"}},
                  trigger="t2")
    assert outcome.status == "error" and "does not exist" in outcome.errors[0]


def test_resource_handler_resets_a_mysensors_node_through_its_edge(services: Container) -> None:
    repository = services.repository
    repository.put(Kind.GATEWAY, Gateway(id="g", provider={"type": "mysensors_v2"}).record())
    repository.put(Kind.NODE, {"id": "g.4", "gatewayId": "g", "nodeId": "4", "labels": {}})
    function = function_for(services)
    add(services, "res", "resource", {})
    assert run(function, "res", {"x": {"type": "resource", "quickId": "node:g.4", "payload": "reset"}}).status == "ok"
    erase, reboot = services.downlink.sent  # type: ignore[attr-defined]
    assert json.loads(erase.raw) == {"ctl": "ota", "node": "4", "erase": True} and reboot.raw == "4;255;3;0;13;"
    assert repository.get(Kind.NODE, "g.4")["labels"]["ms_erase_eeprom"] == "true"
    outcome = run(function, "res", {"x": {"type": "resource", "quickId": "node:g.4", "payload": "firmware_update"}},
                  trigger="t2")  # it needs the firmware's URL, which the API hands the edge
    assert outcome.status == "error" and "from the API" in outcome.errors[0] and len(services.downlink.sent) == 2  # type: ignore[attr-defined]
