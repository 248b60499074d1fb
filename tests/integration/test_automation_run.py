"""Automation through the API and the local stack's path: settings round trip, run-now, reload, sun schedules
following the location, and a temperature crossing a threshold whose webhook handler reaches a local HTTP server
with the rendered body (the in-process handler queue feeding the handler function)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.schedules_local import LocalScheduleRegistry
from chalicelib.core.model import FieldModel, Kind, event
from chalicelib.core.ports import bus_event
from tests.integration.api_helpers import Api, fast_auth, make_container
from tests.integration.services import start_http_server, stop_http_server

pytestmark = pytest.mark.integration


class ListQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, requests: Any) -> None:
        self.sent.extend(requests)


@pytest.fixture(name="api")
def api_fixture(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from chalice.test import Client

    from chalicelib.api import build_api

    fast_auth(monkeypatch)
    container = make_container("memory", tmp_path, request, schedules=LocalScheduleRegistry(),
                               handler_queue=ListQueue())
    with Client(build_api(container)) as http:
        try:
            harness = Api(container, http.http)
            harness.login()
            yield harness
        finally:
            container.close()


def registry(api: Api) -> LocalScheduleRegistry:
    assert isinstance(api.container.schedules, LocalScheduleRegistry)
    return api.container.schedules


def test_system_settings_round_trip_and_name_the_bad_field(api: Api) -> None:
    defaults = api.ok("GET", "/api/settings/system")
    assert defaults["geoLocation"]["latitude"] is None
    assert defaults["nodeStateJob"] == {"executionInterval": "5m", "inactiveDuration": "15m"}
    api.ok("POST", "/api/settings/system", {"language": "de-de", "login": {"message": "Willkommen"}})
    stored = api.ok("POST", "/api/settings/system", {"geoLocation": {
        "latitude": 52.52, "longitude": 13.405, "locationName": "Berlin", "timezone": "Europe/Berlin"}})
    assert stored["language"] == "de-de" and stored["login"] == {"message": "Willkommen"}  # merged, kept
    again = api.ok("GET", "/api/settings/system")
    assert again["geoLocation"]["locationName"] == "Berlin" and again["modifiedOn"]
    for body, field in (({"geoLocation": {"latitude": 100, "longitude": 0}}, "geoLocation.latitude"),
                        ({"geoLocation": {"latitude": 10}}, "geoLocation"),
                        ({"geoLocation": {"timezone": "Mars/Olympus"}}, "geoLocation.timezone"),
                        ({"nodeStateJob": {"executionInterval": "soon"}}, "nodeStateJob.executionInterval"),
                        ({"nodeStateJob": {"inactiveDuration": "0s"}}, "nodeStateJob.inactiveDuration"),
                        ({"outbound": {"allow": ["192.168.1.0/24", "169.254.169.254"]}}, "outbound.allow"),
                        ({"outbound": {"allow": ["http://nas.local/"]}}, "outbound.allow")):
        status, error, _ = api.call("POST", "/api/settings/system", body)
        assert status == 400 and error["field"] == field, (body, error)
    assert api.ok("GET", "/api/settings/system")["geoLocation"]["latitude"] == 52.52  # nothing bad was stored
    allowed = api.ok("POST", "/api/settings/system", {"outbound": {"allow": [" NAS.local", "10.0.0.0/8", "::1"]}})
    assert allowed["outbound"] == {"allow": ["NAS.local", "10.0.0.0/8", "::1"]}


def test_saving_the_location_arms_sun_schedules(api: Api) -> None:
    api.ok("POST", "/api/schedule", {"id": "dawn", "type": "sunrise", "spec": {"frequency": "daily"},
                                     "handlers": ["h"]})
    assert "schedule-dawn" not in registry(api).names()  # no location yet: nothing to arm
    api.ok("POST", "/api/settings/system", {"geoLocation": {"latitude": 52.52, "longitude": 13.405,
                                                            "timezone": "Europe/Berlin"}})
    entry = registry(api).get("schedule-dawn")
    assert entry is not None and entry.expression.startswith("at(") and entry.timezone == "Europe/Berlin"


def test_task_run_now_answers_what_was_queued_and_state_is_readable(api: Api) -> None:
    api.ok("POST", "/api/task", {"id": "t1", "enabled": False, "handlers": ["h1", "h2"],
                                 "handlerParameters": {"message": "ran {{ task.id }}"}})
    result = api.ok("POST", "/api/task/run", ["t1"])
    assert result["queued"] == 2
    assert result["data"][0]["queued"] == ["h1", "h2"] and result["data"][0]["fired"] is True
    queue = api.container.handler_queue
    assert isinstance(queue, ListQueue)
    assert [r["parameters"] for r in queue.sent] == [{"message": "ran t1"}] * 2
    task = api.ok("GET", "/api/task/t1")
    assert task["enabled"] is False and task["state"]["executedCount"] == 1 and task["state"]["lastSuccess"]
    status, error, _ = api.call("POST", "/api/task/run", ["t1", "nope"])
    assert status == 404 and "nope" in error["message"]


def test_schedule_run_now_and_reload(api: Api) -> None:
    api.ok("POST", "/api/schedule", {"id": "s1", "type": "cron", "spec": {"cronExpression": "0 0 8 * * *"},
                                     "timezone": "Europe/Berlin", "handlers": ["h"]})
    result = api.ok("POST", "/api/schedule/run", ["s1"])
    assert result["queued"] == 1 and result["data"][0]["triggerId"].startswith("s1@run@")
    assert api.ok("GET", "/api/schedule/s1")["state"]["executedCount"] == 1

    timers = registry(api)
    timers.delete("schedule-s1")
    timers.put("schedule-ghost", "rate(5 minutes)", "UTC", {"kind": "schedule", "id": "ghost"}, None, None)
    assert api.ok("POST", "/api/schedule/reload") == {"schedules": 1, "tasks": 0, "removed": 1}
    assert timers.names() == {"schedule-s1"}
    assert api.ok("POST", "/api/schedule/reload", ["s1"])["schedules"] == 1
    status, _, _ = api.call("POST", "/api/schedule/reload", ["missing"])
    assert status == 404


class Receiver(BaseHTTPRequestHandler):
    bodies: list[Any] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Receiver.bodies.append(json.loads(self.rfile.read(length) or b"null"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_a_threshold_crossing_reaches_the_webhook_through_the_handler_queue(tmp_path: Path,
                                                                            request: pytest.FixtureRequest,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from chalice.test import Client

    from chalicelib.adapters.handler_queue_local import LocalHandlerQueue
    from chalicelib.api import build_api

    server, url = start_http_server(Receiver)
    Receiver.bodies = []
    fast_auth(monkeypatch)
    services = make_container("memory", tmp_path, request, built=("handler_queue",))
    queue = services.handler_queue  # the handler function Lambda runs, fed by the local queue
    assert isinstance(queue, LocalHandlerQueue)
    queue.start()
    try:
        with Client(build_api(services)) as http:
            api = Api(services, http.http)
            api.login()
            api.ok("POST", "/api/settings/system", {"outbound": {"allow": ["127.0.0.1"]}})  # the receiver is here
            api.ok("POST", "/api/handler", {"id": "hook", "type": "webhook",
                                            "spec": {"url": f"{url}/alert"}})
            api.ok("POST", "/api/task", {
                "id": "too-hot", "handlers": ["hook"],
                "eventFilter": {"eventTypes": ["updated"], "entityTypes": ["field"],
                                "filters": {"id": "gw.1.1.V_TEMP"}},
                "evaluationConfig": {"rule": {"conditions": [
                    {"variable": "entity.current.value", "operator": "gt", "value": 25}]}},
                "handlerParameters": {"alert": {"type": "webhook", "body": {
                    "text": "{{ entity.fieldId }} is {{ entity.current.value }}"}}}})
            services.tasks.subscribe(services.bus)
            for sequence, value in enumerate((21.0, 26.5), start=1):
                record = FieldModel.model_validate({
                    "gatewayId": "gw", "nodeId": "1", "sourceId": "1", "fieldId": "V_TEMP",
                    "metricType": "gauge_float",
                    "current": {"value": value, "timestamp": f"2026-03-27T12:00:0{sequence}.000Z",
                                "sequence": sequence}}).record()
                services.repository.put(Kind.FIELD, record)
                services.bus.publish([bus_event(event("updated", Kind.FIELD, record))])
            deadline = time.monotonic() + 10
            while not Receiver.bodies and time.monotonic() < deadline:
                time.sleep(0.02)
            assert queue.drain(10)
            assert Receiver.bodies == [{"text": "V_TEMP is 26.5"}]
            assert api.ok("GET", "/api/task/too-hot")["state"]["executedCount"] == 2
    finally:
        queue.stop(5)
        stop_http_server(server)
        services.close()
